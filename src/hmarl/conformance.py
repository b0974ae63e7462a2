"""Conformance checks for hierarchical multi-agent environments, shipped as library functions.

The same idea as PettingZoo's ``parallel_api_test``, written for environments that
follow RLlib's ``MultiAgentEnv`` with dynamic agent ids, as :class:`hmarl.yard.ChickenYardEnv`
does: fixed ``possible_agents``, per-agent ``observation_spaces`` and
``action_spaces``, observations only for the agents due to act next (and the final
ones of agents that finish), and ``agents`` listing the agents just observed.
RLlib's own env checker looks at one reset and one step; these checks play whole seeded
episodes with random actions, because the mistakes a hierarchy invites (an agent revived
after it ended, a level that acts out of turn, an episode that never sets ``__all__``)
only show later in an episode.

:func:`check_env` asserts, at every step:

- the observations' keys are exactly the agents due to act next (``env.due_agents``
  where the env has it), plus the final observations of agents ending on this step,
  and ``env.agents`` lists just those keys; every id is one of
  ``possible_agents``; an agent that ends is given its final observation;
- every observation is inside its space, and that space is the same object every call;
- no agent observes (so acts) again once it was terminated or truncated;
- rewards, terminateds, truncateds and infos name only possible agents;
- ``__all__`` is in ``terminateds`` and ``truncateds``, and one of them is True
  exactly when no agent is due any more; by then every agent that observed has ended.

:func:`check_determinism` asserts that two fresh environments, reset with the same
seeds and given the same seeded actions, return identical results step for step.

Both raise :class:`AssertionError` naming the episode, the step and the agent.

>>> from hmarl.yard import ChickenYardEnv
>>> check_env(ChickenYardEnv({"timeout": 50}), seed=0, episodes=2)
>>> check_determinism(lambda: ChickenYardEnv({"timeout": 50}), seed=0, episodes=2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

__all__ = ["check_determinism", "check_env"]

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id (plus ``__all__`` or ``__common__``)."""


@dataclass
class Transition:
    """What one ``reset`` (step 0, no actions or rewards) or ``step`` returned."""

    episode: int
    step: int
    actions: AgentDict
    obs: AgentDict
    rewards: AgentDict
    terminateds: AgentDict
    truncateds: AgentDict
    infos: AgentDict

    @property
    def where(self) -> str:
        return f"episode {self.episode}, step {self.step}"

    @property
    def ending(self) -> set[str]:
        """Agents terminated or truncated on this step."""
        return {
            a
            for a in (*self.terminateds, *self.truncateds)
            if a != "__all__" and (self.terminateds.get(a) or self.truncateds.get(a))
        }

    @property
    def due(self) -> set[str]:
        """Agents observed on this step that have to act next."""
        return set(self.obs) - self.ending

    @property
    def over(self) -> bool:
        return bool(self.terminateds.get("__all__") or self.truncateds.get("__all__"))


def play(env: MultiAgentEnv, seed: int, episodes: int, max_steps: int) -> Iterator[Transition]:
    """Play episodes with actions sampled from the action spaces; yield every reset and step.

    Episode ``i`` is reset with ``seed + i``; the action spaces are seeded from
    ``seed``, so the same arguments on a fresh environment give the same actions.
    """
    for i, agent in enumerate(env.possible_agents):
        env.action_spaces[agent].seed(seed + i)
    for episode in range(episodes):
        obs, infos = env.reset(seed=seed + episode)
        last = Transition(episode, 0, {}, obs, {}, {}, {}, infos)
        yield last
        while not last.over and last.due:
            if last.step >= max_steps:
                raise AssertionError(f"{last.where}: the episode did not end in {max_steps} steps")
            actions = {a: env.action_spaces[a].sample() for a in last.obs if a in last.due}
            last = Transition(episode, last.step + 1, actions, *env.step(actions))
            yield last


def check_env(
    env: MultiAgentEnv, seed: int = 0, episodes: int = 3, max_steps: int = 100_000
) -> None:
    """Play seeded random episodes and assert the API contract (see the module docstring)."""
    possible = set(env.possible_agents)
    spaces = dict(env.observation_spaces)
    assert possible <= set(spaces), f"no observation space for {sorted(possible - set(spaces))}"
    assert possible <= set(env.action_spaces), (
        f"no action space for {sorted(possible - set(env.action_spaces))}"
    )
    ended: set[str] = set()
    observed: set[str] = set()
    for t in play(env, seed, episodes, max_steps):
        if t.step == 0:
            ended, observed = set(), set()
            assert t.obs, f"{t.where}: reset() returned no observations"
        for name, d, extra in (
            ("observation", t.obs, set()),
            ("reward", t.rewards, set()),
            ("terminated", t.terminateds, {"__all__"}),
            ("truncated", t.truncateds, {"__all__"}),
            ("info", t.infos, {"__common__"}),
        ):
            strangers = set(d) - possible - extra
            assert not strangers, f"{t.where}: {name} for unknown agent(s) {sorted(strangers)}"
        for agent, ob in t.obs.items():
            assert agent not in ended, f"{t.where}: {agent} observed again after it ended"
            space = env.observation_spaces[agent]
            assert space is spaces[agent], (
                f"{t.where}: observation_spaces[{agent!r}] is a new object; "
                "spaces must not change after construction"
            )
            assert space.contains(ob), f"{t.where}: {agent}'s observation {ob!r} is not in {space}"
        for agent, reward in t.rewards.items():
            assert isinstance(reward, int | float | np.number) and not isinstance(reward, bool), (
                f"{t.where}: {agent}'s reward {reward!r} is not a number"
            )
        for agent in t.ending:
            assert agent not in ended, f"{t.where}: {agent} ended a second time"
            assert agent in t.obs, f"{t.where}: {agent} ended without a final observation"
        assert set(env.agents) == set(t.obs), (
            f"{t.where}: env.agents {sorted(env.agents)} are not the agents just observed "
            f"{sorted(t.obs)}"
        )
        due = getattr(env, "due_agents", None)
        assert due is None or set(due) == t.due, (
            f"{t.where}: env.due_agents {sorted(due)} are not the agents observed to act "
            f"next {sorted(t.due)}"
        )
        observed |= set(t.obs)
        ended |= t.ending
        if t.step == 0:
            continue
        for name, d in (("terminateds", t.terminateds), ("truncateds", t.truncateds)):
            assert "__all__" in d, f"{t.where}: {name} has no '__all__'"
        assert t.over == (not t.due), (
            f"{t.where}: '__all__' is {t.over} but agents due to act are {sorted(t.due)}"
        )
        if t.over:
            hanging = observed - ended
            assert not hanging, f"{t.where}: the episode ended but {sorted(hanging)} never did"


def check_determinism(
    make_env: Callable[[], MultiAgentEnv],
    seed: int = 0,
    episodes: int = 3,
    max_steps: int = 100_000,
) -> None:
    """Two fresh environments, the same seeds and actions: assert identical results."""
    runs = (play(make_env(), seed, episodes, max_steps) for _ in range(2))
    for a, b in zip(*runs, strict=True):
        for name in ("obs", "rewards", "terminateds", "truncateds", "infos"):
            _assert_same(getattr(a, name), getattr(b, name), f"{a.where}: {name}")


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Assert equal values, recursing into dicts and sequences; NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray | np.generic) or isinstance(b, np.ndarray | np.generic):
        a, b = np.asarray(a), np.asarray(b)
        nan_ok = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=nan_ok), (
            f"{where}: {a!r} != {b!r}"
        )
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"
