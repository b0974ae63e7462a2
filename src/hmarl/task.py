"""The task contract: what a user writes to train hmarl on their own system.

A task is one declared object. The minimum is a name, an env factory and the
policy of each agent::

    from hmarl import Task

    TASK = Task(name="couriers", make_env=make_env, policy_of=policy_of)

``make_env(env_config: dict)`` returns a ``ray.rllib.env.multi_agent_env.MultiAgentEnv``
or a PettingZoo ``ParallelEnv`` (any agent ids, any Gymnasium spaces, observations
only for the agents due to act next: that rule is the whole hierarchy; see
:mod:`hmarl.parallel_env`) and ``policy_of(agent_id)`` names the policy that acts for
an agent. An observation that carries an ``action_mask`` masks its agent's actions
everywhere (:mod:`hmarl.action_masks`); an env with a ``state_space`` and ``state()``
gives centralised critics a global state (:mod:`hmarl.global_state`). Everything else
is optional and has a default that works:

====================  ================================================================
field                 what it declares (and the default without it)
====================  ================================================================
description           one line for ``hmarl tasks``
config                a dataclass of env settings: its fields become CLI flags and an
                      ``[env]`` table in TOML; ``make_env`` gets them as a dict
                      (default: a plain dict, no flags)
modules               an ``RLModuleSpec`` per policy, or a function returning them so the
                      task module need not import RLlib (default: RLlib's default
                      modules, on observations flattened by RLlib's own connector)
ppo                   PPO settings per policy: ``lr``, ``gamma``, ``lambda_``,
                      ``entropy_coeff``, ``num_epochs``, ``minibatch_size``, ..., and
                      ``critic``: ``"central"`` for a value that reads the env's global
                      state; ``memory``: ``"lstm"`` for an LSTM in RLlib's default module
                      and ``max_seq_len`` for a module with memory (see
                      :mod:`hmarl.sequences`) (default: the run's, for every policy; a
                      local critic, no memory)
schedule              :class:`Schedule`: hold a policy back until a metric reaches a
                      threshold (default: every policy trains from the start)
baselines             named policies to compare with, each a factory taking a
                      :class:`PolicyContext` (``random`` is always there)
metrics               :class:`Metric`: numbers read from agents' last infos (default:
                      returns per policy only)
score                 :class:`Score`: the headline number of ``hmarl evaluate``
make_batched_env      ``(env_config, num_envs) -> BatchedEnv``: the same rules as arrays,
                      for fast evaluation and sampling (default: envs one by one)
discounting           "smdp" (gamma per env step, also inside a decision, the default)
                      or "per-decision" (RLlib's: one gamma per decision)
evaluation_actions    how the trained policy acts in ``hmarl evaluate``, ``watch`` and
                      the closing evaluation of ``train``: "greedy" (its most likely
                      action, the default) or "sampled" (from its action distribution,
                      as in training; seeded); ``--actions`` overrides it
training              the run's settings the task trains best with, by
                      :class:`~hmarl.training.TrainConfig` field (``train_batch_size``,
                      ``minibatch_size``, ``lr``, ..., see :data:`TRAINING_SETTINGS`);
                      ``--config`` and the command line override each (default: the
                      run's defaults)
====================  ================================================================

A renderer follows Gymnasium's convention: the env lists ``"rgb_array"`` in
``metadata["render_modes"]`` and, with ``env.render_mode = "rgb_array"``,
``render()`` returns an (H, W, 3) frame. Then ``hmarl watch`` shows the task.

This module imports neither Ray nor torch, so that a task and its config can be
checked before either starts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from hmarl.action_masks import MaskError, check_masked_spaces
from hmarl.global_state import CRITICS

if TYPE_CHECKING:
    import gymnasium as gym
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    from hmarl.batched_env import BatchedEnv

__all__ = [
    "ACTIONS",
    "DISCOUNTING",
    "MEMORIES",
    "TRAINING_SETTINGS",
    "Metric",
    "Policy",
    "PolicyContext",
    "Schedule",
    "Score",
    "Task",
    "TaskError",
]

DISCOUNTING = ("smdp", "per-decision")
"""How a decision that lasted k env steps is discounted: by gamma**k, or by gamma once."""

ACTIONS = ("greedy", "sampled")
"""How a trained policy acts when evaluated: its most likely action, or one sampled
from its action distribution (as in training, where the returns in the curves come from)."""

PPO_SETTINGS = frozenset(
    {
        "lr",
        "gamma",
        "lambda_",
        "entropy_coeff",
        "num_epochs",
        "minibatch_size",
        "clip_param",
        "vf_loss_coeff",
        "vf_clip_param",
        "critic",
        "memory",
        "max_seq_len",
    }
)
"""The PPO settings a task may set per policy (``gamma`` and ``lambda_`` too: hmarl's
advantages read them per policy, where RLlib's GAE takes the run's for all; ``critic``
is hmarl's: "local" or "central", see :mod:`hmarl.global_state`; so are ``memory`` and
``max_seq_len``, see :data:`MEMORIES`)."""

TRAINING_SETTINGS = frozenset(
    {
        "train_batch_size",
        "minibatch_size",
        "num_epochs",
        "lr",
        "gamma",
        "lambda_",
        "entropy_coeff",
        "anneal_lr",
        "vf_clip_param",
        "num_envs_per_env_runner",
        "checkpoint_every",
    }
)
"""The run settings a task may declare in ``training`` (fields of ``TrainConfig``): how it
learns and samples, not where a run goes or when it stops."""

HMARL_SETTINGS = frozenset({"critic", "memory", "max_seq_len"})
"""The per-policy settings hmarl reads itself (the others are RLlib's PPO settings)."""

MEMORIES = ("none", "lstm")
"""A policy's memory on RLlib's default module: none (an MLP), or an LSTM after its MLP
(``use_lstm``); a task's own module has memory when its ``get_initial_state`` is not empty."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class TaskError(ValueError):
    """A task, or a task's config, is not usable; the message says why."""


class Policy(Protocol):
    """Anything that acts: a trained policy, a baseline, a random policy.

    ``obs`` is a batch of observations of agents that share ``policy_id``: the
    policy's observation space with a leading batch axis (a dict of arrays for a
    Dict space). The result is one action per row.

    A baseline that needs more than the observations (a hand-written rule that reads
    the env's state) may also define ``bind(env)``: before the first step, hmarl's
    evaluation calls it with the env the policy acts in: the task's batched env, its
    env, or the list of its envs stepped together. The rows of each ``act`` batch are
    then the due agents, env by env in order, in agent order within an env.

    A policy with memory sets ``remembers = True``: hmarl's evaluation then calls
    ``act(policy_id, obs, agents=keys)``, a key per row naming the agent (the same key
    for the same agent all episode), and ``bind`` before new episodes start.
    """

    def act(self, policy_id: str, obs: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class PolicyContext:
    """What a baseline factory gets: the env it will face and a seed."""

    env_config: Any
    """The task's config object (its ``config`` dataclass), or the plain dict."""
    observation_spaces: Mapping[str, gym.Space]
    """Observation space of each policy."""
    action_spaces: Mapping[str, gym.Space]
    """Action space of each policy."""
    seed: int | None = None


@dataclass(frozen=True)
class Metric:
    """A number read from each agent's last info, averaged over a policy's agent-episodes.

    At the end of an episode (or when an agent ends) hmarl reads ``info[key]`` of
    every agent of ``policy``; agents without the key, or with ``None``, are left
    out, and with ``where`` only agents whose ``info[where]`` is true count. The
    same numbers are logged while training and reported by ``hmarl evaluate``.
    """

    name: str
    policy: str | tuple[str, ...]
    """The policy whose agents it reads; or several, of which a run has some (a task
    whose settings choose its policies, flat or hierarchical, names each choice's)."""
    key: str
    where: str | None = None
    description: str = ""

    @property
    def policies(self) -> tuple[str, ...]:
        """The policies whose agents it reads."""
        return (self.policy,) if isinstance(self.policy, str) else tuple(self.policy)


@dataclass(frozen=True)
class Score:
    """The headline of ``hmarl evaluate``: (trained - random) / (reference - random).

    0 is the random policy, 1 the reference: a baseline by name, or ``"best"`` for
    the best of the task's baselines on the same episodes.
    """

    metric: str
    reference: str = "best"
    description: str = ""


@dataclass(frozen=True)
class Schedule:
    """Hold a policy's training back until a metric reaches a threshold.

    The held policy acts but does not learn (its value function does); the switch is
    a latch, decided on the last ``window`` values of ``metric`` once there are that
    many, saved in checkpoints and reported each iteration.
    """

    hold: str
    """The policy held back."""
    metric: str
    """A :class:`Metric` name of the task."""
    threshold: float
    window: int = 200
    """How many of the metric's latest values the decision averages (and waits for)."""


@dataclass(frozen=True)
class Task:
    """A system hmarl can train on; see the module docstring for every field."""

    name: str
    make_env: Callable[[dict[str, Any]], MultiAgentEnv]
    policy_of: Callable[[str], str]
    description: str = ""
    config: type | None = None
    modules: Mapping[str, RLModuleSpec] | Callable[[], Mapping[str, RLModuleSpec]] | None = None
    ppo: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    schedule: Schedule | None = None
    baselines: Mapping[str, Callable[[PolicyContext], Policy]] = field(default_factory=dict)
    metrics: Sequence[Metric] = ()
    score: Score | None = None
    make_batched_env: Callable[[dict[str, Any], int], BatchedEnv] | None = None
    discounting: Literal["smdp", "per-decision"] = "smdp"
    evaluation_actions: Literal["greedy", "sampled"] = "greedy"
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise TaskError(
                f"task name {self.name!r} must start with a letter and hold only "
                "letters, digits, '_' and '-'"
            )
        for name in ("make_env", "policy_of"):
            if not callable(getattr(self, name)):
                raise TaskError(f"task {self.name}: {name} must be callable")
        if self.config is not None and not dataclasses.is_dataclass(self.config):
            raise TaskError(f"task {self.name}: config must be a dataclass, got {self.config!r}")
        if self.discounting not in DISCOUNTING:
            raise TaskError(
                f"task {self.name}: discounting must be one of {', '.join(DISCOUNTING)}, "
                f"got {self.discounting!r}"
            )
        if self.evaluation_actions not in ACTIONS:
            raise TaskError(
                f"task {self.name}: evaluation_actions must be one of {', '.join(ACTIONS)}, "
                f"got {self.evaluation_actions!r}"
            )
        unknown = sorted(set(self.training) - TRAINING_SETTINGS)
        if unknown:
            raise TaskError(
                f"task {self.name}: unknown training setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(TRAINING_SETTINGS))}"
            )
        for policy, settings in self.ppo.items():
            unknown = sorted(set(settings) - PPO_SETTINGS)
            if unknown:
                raise TaskError(
                    f"task {self.name}: unknown PPO setting(s) {', '.join(unknown)} for "
                    f"{policy}; known: {', '.join(sorted(PPO_SETTINGS))}"
                )
            if settings.get("critic", "local") not in CRITICS:
                raise TaskError(
                    f"task {self.name}: the critic of {policy} must be one of "
                    f"{', '.join(CRITICS)}, got {settings['critic']!r}"
                )
            if settings.get("memory", "none") not in MEMORIES:
                raise TaskError(
                    f"task {self.name}: the memory of {policy} must be one of "
                    f"{', '.join(MEMORIES)}, got {settings['memory']!r}"
                )
            length = settings.get("max_seq_len", 1)
            if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise TaskError(
                    f"task {self.name}: the max_seq_len of {policy} must be a whole number "
                    f"of at least 1, got {length!r}"
                )
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise TaskError(f"task {self.name}: metric names repeat: {names}")
        if "random" in self.baselines:
            raise TaskError(f"task {self.name}: 'random' is built in; name the baseline otherwise")
        if self.score is not None:
            if self.score.metric not in names:
                raise TaskError(
                    f"task {self.name}: the score's metric {self.score.metric!r} is not "
                    f"one of its metrics {names}"
                )
            if self.score.reference != "best" and self.score.reference not in self.baselines:
                raise TaskError(
                    f"task {self.name}: the score's reference {self.score.reference!r} is "
                    f"not one of its baselines {sorted(self.baselines)}"
                )
            if self.score.reference == "best" and not self.baselines:
                raise TaskError(f"task {self.name}: a score against 'best' needs baselines")
        if self.schedule is not None and not (
            isinstance(self.schedule.window, int) and self.schedule.window >= 1
        ):
            raise TaskError(
                f"task {self.name}: the schedule's window must be a whole number of values "
                f"(at least 1), got {self.schedule.window!r}"
            )
        if self.schedule is not None and self.schedule.metric not in names:
            raise TaskError(
                f"task {self.name}: the schedule's metric {self.schedule.metric!r} is not "
                f"one of its metrics {names}"
            )

    # -- env config ---------------------------------------------------------

    def env_config(self, values: Mapping[str, Any] | None = None) -> Any:
        """The task's config object for ``values`` (defaults for the rest), validated.

        With a ``config`` dataclass, unknown keys and the dataclass's own checks
        raise :class:`TaskError` naming the key; without one, a plain dict.
        """
        values = dict(values or {})
        if self.config is None:
            return values
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TaskError(
                f"task {self.name} has no setting {', '.join(unknown)}; "
                f"its settings are {', '.join(sorted(known))}"
            )
        try:
            return self.config(**values)
        except (TypeError, ValueError) as err:
            raise TaskError(f"task {self.name}: {err}") from None

    def env_config_dict(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`env_config` as the plain dict ``make_env`` and RLlib's ``env_config`` take."""
        config = self.env_config(values)
        return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)

    def module_specs(self) -> Mapping[str, RLModuleSpec]:
        """The task's RL module spec per policy ({} for RLlib's defaults everywhere)."""
        specs = self.modules() if callable(self.modules) else self.modules
        return dict(specs or {})

    def policy_spaces(self, env: MultiAgentEnv) -> dict[str, tuple[gym.Space, gym.Space]]:
        """Each policy's (observation, action) space, read from an env of this task.

        Every possible agent must map to a policy, and the agents of one policy must
        share its spaces (one network acts for all of them).
        """
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            raise TaskError(f"task {self.name}: the env lists no possible_agents")
        spaces: dict[str, tuple[gym.Space, gym.Space]] = {}
        first: dict[str, str] = {}
        for agent in agents:
            policy = self.policy_id(agent)
            try:
                pair = (env.get_observation_space(agent), env.get_action_space(agent))
            except Exception as err:
                raise TaskError(
                    f"task {self.name}: no spaces for agent {agent!r} ({err})"
                ) from None
            try:
                check_masked_spaces(*pair)
            except MaskError as err:
                raise TaskError(f"task {self.name}: agent {agent}: {err}") from None
            if policy not in spaces:
                spaces[policy], first[policy] = pair, agent
            elif pair != spaces[policy]:
                raise TaskError(
                    f"task {self.name}: agents {first[policy]} and {agent} share policy "
                    f"{policy!r} but not their spaces ({spaces[policy]} vs {pair})"
                )
        return spaces

    def policy_id(self, agent: str) -> str:
        """``policy_of(agent)``, with a clear error when it fails."""
        try:
            policy = self.policy_of(agent)
        except Exception as err:
            raise TaskError(
                f"task {self.name}: policy_of({agent!r}) failed: {type(err).__name__}: {err}"
            ) from None
        if not isinstance(policy, str) or not policy:
            raise TaskError(
                f"task {self.name}: policy_of({agent!r}) returned {policy!r}, not a policy id"
            )
        return policy

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise TaskError(f"task {self.name} has no metric {name!r}")
