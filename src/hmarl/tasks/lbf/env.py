"""LBF as an RLlib multi-agent env: lbforaging's own env, a thin adapter (spec sheet below)."""

from __future__ import annotations

from typing import Any

import numpy as np
from lbforaging.foraging.environment import ForagingEnv

from hmarl.tasks.lbf.config import LBFConfig
from hmarl.tasks.lbf.state import package_state, state_space
from hmarl.tasks.packaged.env import PackageEnv
from hmarl.tasks.packaged.package import make_package_env

__all__ = ["LBFConfig", "LBFEnv"]


class LBFEnv(PackageEnv):
    """Level-Based Foraging: players of levels 1-2 load food together (lbforaging 2.0.0).

    The env is the package's own (``lbforaging.foraging.ForagingEnv``), made from its
    registered id (``LBFConfig.env_id``; ids of the package's form that it does not
    register, such as ``Foraging-15x15-4p-5f-v3``, are registered by the task). Players
    walk a square field; food stands on it. A food is loaded when the players beside it
    that load on the same step have levels adding up to its level.

    **Agents.** ``agent_0`` .. ``agent_{n-1}``, the package's players in order. All act
    every step, all for ``shared_policy``.

    **Action space.** ``Discrete(6)``: 0 none, 1 north (row - 1), 2 south, 3 west
    (column - 1), 4 east, 5 load. A move off the field or onto food, or a load with no
    food beside the player, becomes *none*. Other players do not make a move invalid
    (see the moves below).

    **Observation space.** ``Box(float32)`` of length 3F + 3N (F: the env's food slots,
    ``max_num_food``; N players): F food slots (row, column, level), then N player
    slots (row, column, level), the player itself first, then the others it sees in
    index order. Positions count from the top-left corner of the player's view: with
    the whole field in sight (ids without ``-2s``), absolute positions; with ``-2s``,
    the view is the 5 x 5 square around the player, clipped at the field's edge. Slots
    hold what the player sees, packed to the front: food in row-major order of its cell
    (a slot is not a food's identity: when food is loaded the later ones move up),
    unused slots (-1, -1, 0).

    **Global state** (``state()``, in ``state_space``; for ``critic="central"``): the
    whole field, whatever the players see: the food still on it (row, column, level) in
    row-major order, unused slots (-1, -1, 0), then every player (row, column, level) in
    player order, positions absolute (:mod:`hmarl.tasks.lbf.state`).

    **Rewards.** When a food of level L is loaded, each player that loaded it gets
    ``level * L / (sum of the loaders' levels * sum of all food levels this episode)``.
    So the players' rewards summed over an episode are the share of the food (by
    level) loaded, at most 1: the benchmark's score, which every agent's final info
    carries as ``episode_return``. A failed load costs ``penalty`` (0 in every
    registered id).

    **Starting state**, drawn from the package's generator (``reset(seed=...)``):
    players on distinct random cells with levels uniform in 1..2; food on cells off the
    field's border rows and columns, with no other food in the 3 x 3 square around it
    nor two cells away in a straight line. A food's level is the sum of the three
    lowest player levels in ``-coop`` ids (so that, with up to three players, all of
    them must load it), otherwise uniform from 1 to that sum.

    **Episode end.** *Terminated* when all food is loaded. *Truncated* after 50 steps
    (the package's ``max_episode_steps``): the package reports its time limit as
    terminated (``done``); this env reports it as truncated, so values bootstrap past
    it. EPyMARL counts it as terminal: returns compare, value targets differ.

    **Moves and loads, as the package makes them** (kept, not fixed):

    - Every player claims a cell: where it moves, or where it stands. A cell claimed by
      two or more players is entered by none of them; everyone else moves. So two
      players may swap cells (passing through each other), and a player may enter the
      cell of a player whose own move failed: the two then share a cell, until one of
      them leaves (``tests/test_lbf_batched.py`` shows both).
    - Loading players stand still; the food's level is compared with the levels of the
      players beside it that load on the same step (the spawn rule above keeps every
      player beside one food at most, so the order the package handles loads in, a
      Python set's, does not matter).

    **Quirks** (kept, not fixed):

    - A reset spawns players on cells other than those its players stood on when the
      last episode ended (the package checks the new cells against the old positions):
      ``reset(seed=s)`` after an episode may start differently from a fresh env's. The
      batched env resets the same way (from each env's last positions).
    - With ``-2s``, a player lists the players up to 4 cells from the corner of its
      view, and that view is clipped at the field's edge: near the top or the left edge
      it lists players outside its view (beyond the food it can see).
    - lbforaging 2.0.0 cannot build its grid observations (``Foraging-grid-*`` ids):
      its observation space has the wrong shape. This env refuses them in one line.

    **Arguments.** ``LBFEnv(config)`` with an :class:`LBFConfig`, a plain dict of its
    fields (RLlib's ``env_config``) or nothing (``Foraging-8x8-2p-2f-coop-v3``); bad
    actions raise ``ValueError`` naming the agent, before the package sees them.

    **Rendering.** ``render_mode="rgb_array"``: frames drawn with pygame from the state
    (:mod:`hmarl.tasks.lbf.render`), with no display (the package draws with pyglet).

    Example:

    >>> env = LBFEnv({"env_id": "Foraging-8x8-2p-2f-coop-v3"})
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs), env.action_spaces["agent_0"]
    (['agent_0', 'agent_1'], Discrete(6))
    >>> obs["agent_1"]  # two foods (row, col, level), then itself, then agent_0
    array([2., 5., 2., 4., 6., 2., 2., 0., 1., 5., 4., 1.], dtype=float32)
    >>> obs, rewards, terminateds, truncateds, infos = env.step({"agent_0": 1, "agent_1": 5})
    >>> obs["agent_0"][6:9], rewards  # agent_0 went north; agent_1 had nothing to load
    (array([4., 4., 1.], dtype=float32), {'agent_0': 0.0, 'agent_1': 0.0})
    """

    def __init__(
        self, config: LBFConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.config = LBFConfig.coerce(config)
        super().__init__(make_package_env(self.config.env_id, ForagingEnv), render_mode)
        self.state_space = state_space(self.package)
        """The global state's space (:mod:`hmarl.tasks.lbf.state`)."""

    def state(self) -> np.ndarray:
        """The whole field now: every food and player with its level (the global state)."""
        return package_state(self.package)

    def time_limit_reached(self) -> bool:
        # The package ends an episode when no food is left or at its step limit.
        return bool(self.package.field.sum() > 0)

    def make_renderer(self) -> Any:
        from hmarl.tasks.lbf.render import ForagingRenderer

        return ForagingRenderer(self.package)
