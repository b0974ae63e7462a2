"""A task's env as RLlib's env runners run it: built checked, its steps stamped, its faults named.

:class:`TaskEnv` is the env creator hmarl registers with RLlib: it calls the task's
``make_env`` and wraps the env in :class:`StampedEnv`, which changes nothing the env
says but adds to the info of every observation:

- ``hmarl_t``: the env step of the observation (0 after reset). Consecutive stamps
  of one agent give how many env steps each of its decisions lasted, which SMDP
  discounting needs (see :mod:`hmarl.advantages`). ``MultiAgentEpisode`` knows this
  in principle, through ``env_t_to_agent_t``, but in RLlib 2.60 the values of that
  mapping mix absolute and lookback-relative agent steps across episode chunks
  (seen on the chicken yard's high agents, whose decision spans chunks), so hmarl
  does not read it.
- ``hmarl_option_rewards``: the agent's reward at each env step of a decision that
  lasted more than one step, when some of it came before the last step. RLlib sums
  such rewards onto the decision's transition, losing their timing; SMDP credit
  counts each at its own step.
- ``hmarl_state``: with a centralised critic in the run, the env's ``state()`` at
  the step of the observation (see :mod:`hmarl.global_state`); the learner makes it
  the ``global_state`` column.
- ``hmarl_end``: on an agent's final observation, "terminated" or "truncated", as
  the env said. RLlib 2.60's ``MultiAgentEpisode.add_env_step`` declares the whole
  episode terminated once every agent is done, so agents truncated by a time limit
  end up flagged terminated *and* truncated, and RLlib's GAE, which lets
  terminated win, drops their bootstrap value. hmarl's advantages read this stamp.

**World time.** An env may say how much world time a step took: ``elapsed`` in
``infos["__common__"]`` (:data:`ELAPSED`), a whole number, 1 when absent. A step in
which only high levels choose (a decision that takes no time, as the goal wrapper of
:mod:`hmarl.goals` makes them) says 0. The stamps count world time, so such a step
discounts no one; its rewards count with the most recent world step's (with the next
one's if none has passed since the agent acted); and RLlib's env-step counters count
world time too (see :class:`hmarl.stock_runner.StockEnvRunner`).

Faults: an exception from the env's ``reset`` or ``step`` is raised again as an
:class:`EnvFault` that names the task, the env step, the agents that acted and the
original error, so the one line a user reads says where it happened.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.global_state import STATE_INFO
from hmarl.parallel_env import AEC_ADVICE, as_multi_agent_env, is_aec_env
from hmarl.task import Task, TaskError

STAMP = "hmarl_t"
OPTION_REWARDS = "hmarl_option_rewards"
END = "hmarl_end"
COMMON = "__common__"
"""RLlib's info key for what concerns no agent in particular."""
ELAPSED = "elapsed"
"""``infos["__common__"]["elapsed"]``: the world time a step took (1 when absent)."""


def elapsed_of(infos: dict) -> int:
    """The world time a step took, as its infos say (see the module docstring)."""
    elapsed = (infos.get(COMMON) or {}).get(ELAPSED, 1)
    if isinstance(elapsed, bool) or not isinstance(elapsed, int | np.integer) or elapsed < 0:
        raise ValueError(
            f"infos['{COMMON}']['{ELAPSED}'] must be a whole number of steps, 0 or more; "
            f"got {elapsed!r}"
        )
    return int(elapsed)


class EnvFault(RuntimeError):
    """The task's env raised; the message names the task, the step and the agents."""


def make_task_env(task: Task, env_config: dict[str, Any]) -> MultiAgentEnv:
    """``task.make_env(env_config)`` as an RLlib ``MultiAgentEnv``, or a clear error.

    Every place in hmarl that needs a task's env builds it here: a PettingZoo
    ``ParallelEnv`` is adapted (:mod:`hmarl.parallel_env`), an AEC env is refused with
    the conversion to use, anything else that is not a ``MultiAgentEnv`` is refused.
    """
    try:
        env = task.make_env(dict(env_config))
    except Exception as err:
        raise TaskError(f"task {task.name}: make_env failed: {type(err).__name__}: {err}") from None
    if is_aec_env(env):
        raise TaskError(f"task {task.name}: make_env returned a PettingZoo AEC env; {AEC_ADVICE}")
    env = as_multi_agent_env(env)
    if not isinstance(env, MultiAgentEnv):
        raise TaskError(
            f"task {task.name}: make_env returned a {type(env).__name__}, neither a "
            "ray.rllib.env.multi_agent_env.MultiAgentEnv nor a PettingZoo ParallelEnv"
        )
    return env


class TaskEnv:
    """The env creator RLlib calls in every env runner.

    Registered with Tune's registry (see :func:`hmarl.training.build_config`), which
    ships it to every Ray worker; unpickling it there imports the task's module
    (from the working directory or ``PYTHONPATH``, see :mod:`hmarl.registry`).
    """

    def __init__(self, task: Task, with_state: bool = False) -> None:
        self.task = task
        self.with_state = with_state
        """Whether every observation's info gets the env's global state."""

    def __call__(self, env_config: dict[str, Any]) -> StampedEnv:
        env = make_task_env(self.task, dict(env_config))
        return StampedEnv(env, self.task.name, self.with_state)


class StampedEnv(MultiAgentEnv):
    """The task's env, with step stamps and option rewards in its infos (see the module)."""

    def __init__(self, env: MultiAgentEnv, task_name: str, with_state: bool = False) -> None:
        self.env = env  # first: MultiAgentEnv.__init__ reads `agents`, which delegates to it
        super().__init__()
        self.task_name = task_name
        self.with_state = with_state
        self.possible_agents = env.possible_agents
        self.observation_spaces = getattr(env, "observation_spaces", None)
        self.action_spaces = getattr(env, "action_spaces", None)
        self.metadata = getattr(env, "metadata", {})
        self.t = 0
        """World time: env steps, less those that took none (see the module)."""
        self.last_elapsed = 1
        """The world time the last step took."""
        self._waiting: dict[str, list[float]] = {}
        """Agents inside a decision: the rewards of each world step of it so far."""
        self._early: dict[str, float] = {}
        """Rewards of agents inside a decision from steps that took no time before its first
        world step (they count with that step's)."""

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @agents.setter
    def agents(self, value: list[str]) -> None:
        # MultiAgentEnv.__init__ sets `agents`; the wrapped env owns it.
        pass

    def get_observation_space(self, agent_id: str) -> Any:
        return self.env.get_observation_space(agent_id)

    def get_action_space(self, agent_id: str) -> Any:
        return self.env.get_action_space(agent_id)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        try:
            obs, infos = self.env.reset(seed=seed, options=options)
        except Exception as err:
            raise EnvFault(
                f"task {self.task_name}: reset failed: {type(err).__name__}: {err}"
            ) from err
        self.t = 0
        self._waiting, self._early = {}, {}
        return obs, self._stamped(obs, infos, {}, {})

    def step(self, actions: dict[str, Any]) -> tuple:
        try:
            obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        except Exception as err:
            acting = ", ".join(sorted(actions)) or "none"
            raise EnvFault(
                f"task {self.task_name}: step {self.t + 1} failed (acting: {acting}): "
                f"{type(err).__name__}: {err}"
            ) from err
        try:
            elapsed = elapsed_of(infos)
        except ValueError as err:
            raise EnvFault(f"task {self.task_name}: step {self.t + 1}: {err}") from None
        self.t += elapsed
        self.last_elapsed = elapsed
        for agent in actions:
            self._waiting.setdefault(agent, [])
        for agent, waited in self._waiting.items():
            reward = float(rewards.get(agent, 0.0))
            if elapsed:
                early = self._early.pop(agent, 0.0)
                waited.extend([*[0.0] * (elapsed - 1), reward + early])
            elif waited:
                waited[-1] += reward
            else:
                self._early[agent] = self._early.get(agent, 0.0) + reward
        stamped = self._stamped(obs, infos, terminateds, truncateds)
        return obs, rewards, terminateds, truncateds, stamped

    def _stamped(self, obs: dict, infos: dict, terminateds: dict, truncateds: dict) -> dict:
        stamped = dict(infos)
        state = self.env.state() if self.with_state and obs else None
        for agent in obs:
            info = {**(infos.get(agent) or {}), STAMP: self.t}
            if self.with_state:
                info[STATE_INFO] = state
            if terminateds.get(agent):
                info[END] = "terminated"
            elif truncateds.get(agent) or truncateds.get("__all__"):
                info[END] = "truncated"
            elif terminateds.get("__all__"):
                info[END] = "terminated"
            waited = self._waiting.pop(agent, None)
            self._early.pop(agent, None)  # came with no world step: RLlib's sum has it
            if waited is not None and len(waited) > 1 and any(waited[:-1]):
                info[OPTION_REWARDS] = waited
            stamped[agent] = info
        return stamped

    def render(self) -> Any:
        return self.env.render()

    @property
    def render_mode(self) -> str | None:
        return getattr(self.env, "render_mode", None)

    @render_mode.setter
    def render_mode(self, value: str | None) -> None:
        if hasattr(self, "env"):
            self.env.render_mode = value

    def close(self) -> None:
        self.env.close()
