"""PettingZoo envs as tasks: a ``ParallelEnv`` seen as RLlib's ``MultiAgentEnv``.

A task's ``make_env`` may return a PettingZoo ``ParallelEnv`` (pettingzoo 1.27):
``possible_agents``, ``observation_space(agent)``, ``action_space(agent)``,
``reset(seed=, options=)``, ``step(actions)`` and ``agents``, emptied when the
episode is over. :func:`as_multi_agent_env` wraps it in :class:`ParallelEnvAdapter`,
which changes nothing the env says and fills in what RLlib's episodes need:

- **Who is due.** The agents in a step's observations that did not end on it. A flat
  env observes every live agent every step, so every live agent is due; a
  hierarchical PettingZoo env observes only the agents due to act, which is hmarl's
  rule of the hierarchy, unchanged.
- **The end.** ``__all__`` in ``terminateds`` and ``truncateds``: the episode is over
  when the env's ``agents`` is empty (PettingZoo's rule), truncated if any agent was
  truncated on that last step, terminated otherwise.
- **Nothing after the end.** Rewards and infos of agents that ended on an earlier
  step are dropped: RLlib's ``MultiAgentEpisode`` refuses data for an agent it has
  closed, and a PettingZoo env owes an ended agent nothing.
- **Spaces asked once.** ``observation_space(agent)`` and ``action_space(agent)`` are
  read at construction, so every call hands out the same objects.
- **Frames.** ``render_mode`` set after construction (``hmarl watch`` sets
  ``"rgb_array"``) reaches the innermost env, which draws.
- **State.** ``state()`` and ``state_space`` (PettingZoo's names) are passed through
  when the env has them: a centralised critic reads them (:mod:`hmarl.global_state`).

RLlib's own ``ParallelPettingZooEnv`` (``ray.rllib.env.wrappers.pettingzoo_env``, read
in 2.60.0) is not used: it keeps the agent ids in a ``set``, so their order (and with
it the order of modules and random draws) depends on Python's string hash seed; it
declares ``__all__`` only when every agent has a flag on the same step; and it
passes a ``render_mode`` argument that PettingZoo's ``render()`` does not take.

An AEC env (PettingZoo's turn-by-turn API) is refused with the conversion to use.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.env.multi_agent_env import MultiAgentEnv

AEC_ADVICE = (
    "hmarl takes PettingZoo's ParallelEnv: convert it with "
    "pettingzoo.utils.conversions.aec_to_parallel(env) "
    "(turn_based_aec_to_parallel(env) for a game where one agent moves at a time)"
)


def is_parallel_env(env: Any) -> bool:
    """Is ``env`` a PettingZoo ParallelEnv (wrapped or not)?"""
    try:
        from pettingzoo.utils.env import ParallelEnv
    except ImportError:  # no PettingZoo installed: no env of the user's can be one
        return False
    return isinstance(env, ParallelEnv)


def is_aec_env(env: Any) -> bool:
    """Is ``env`` a PettingZoo AEC env (wrapped or not)?"""
    try:
        from pettingzoo.utils.env import AECEnv
    except ImportError:
        return False
    return isinstance(env, AECEnv)


def as_multi_agent_env(env: Any) -> Any:
    """``env`` as hmarl trains it: a PettingZoo ParallelEnv adapted, anything else as it is."""
    return ParallelEnvAdapter(env) if is_parallel_env(env) else env


class ParallelEnvAdapter(MultiAgentEnv):
    """A PettingZoo ``ParallelEnv`` as an RLlib ``MultiAgentEnv`` (see the module docstring)."""

    def __init__(self, env: Any) -> None:
        self.env = env  # first: MultiAgentEnv.__init__ sets `agents`, which delegates to it
        super().__init__()
        self.possible_agents = list(env.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        self.metadata = getattr(env, "metadata", {}) or {}
        self._ended: set[str] = set()
        state_space = getattr(env, "state_space", None)
        if state_space is not None:
            self.state_space = state_space

    @property
    def agents(self) -> list[str]:
        return list(getattr(self.env, "agents", []))

    @agents.setter
    def agents(self, value: list[str]) -> None:
        # MultiAgentEnv.__init__ sets `agents`; the PettingZoo env owns it.
        pass

    @property
    def render_mode(self) -> str | None:
        return getattr(self.env, "render_mode", None)

    @render_mode.setter
    def render_mode(self, value: str | None) -> None:
        if not hasattr(self, "env"):
            return
        # PettingZoo fixes render_mode at construction; `hmarl watch` sets it after. The
        # env that draws is the innermost one (aec_to_parallel and PettingZoo's own
        # wrappers read it there), so it is set on every layer.
        self.env.render_mode = value
        unwrapped = getattr(self.env, "unwrapped", self.env)
        if unwrapped is not self.env:
            unwrapped.render_mode = value

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        obs, infos = self.env.reset(seed=seed, options=options)
        self._ended = set()
        return dict(obs), {a: i for a, i in (infos or {}).items() if a in obs}

    def step(self, actions: dict[str, Any]) -> tuple:
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        live = set(self.possible_agents) - self._ended
        rewards = {a: r for a, r in rewards.items() if a in live}
        terminateds = {a: bool(v) for a, v in terminations.items() if a in live}
        truncateds = {a: bool(v) for a, v in truncations.items() if a in live}
        infos = {a: i for a, i in (infos or {}).items() if a in obs}
        self._ended |= {a for a in live if terminateds.get(a) or truncateds.get(a)}
        over = not self.agents
        truncated = over and any(truncateds.values())
        terminateds["__all__"] = over and not truncated
        truncateds["__all__"] = truncated
        return dict(obs), rewards, terminateds, truncateds, infos

    def state(self) -> Any:
        return self.env.state()

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
