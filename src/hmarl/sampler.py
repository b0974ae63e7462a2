"""The batched sampler: an RLlib EnvRunner that steps a task's batched env as arrays.

RLlib's ``MultiAgentEnvRunner`` keeps a ``MultiAgentEpisode`` per env and does
per-agent, per-step bookkeeping in Python; for small envs that bookkeeping, not
the env or the networks, is the cost of sampling. :class:`BatchedEnvRunner` is a
real RLlib ``EnvRunner`` (built by RLlib's ``EnvRunnerGroup``, local or remote,
restarted by its fault tolerance, its weights synced by the Algorithm) that
instead steps the task's :class:`~hmarl.batched_env.BatchedEnv`: each step, each
policy's RL module runs once on all of its agents that are due, through
``forward_exploration`` and the module's own action distribution.

What it hands the learner is a batch per policy in exactly the layout RLlib's
learner connectors build from episodes: each agent's decisions in time order,
then one row with its latest observation for the bootstrap value (loss-masked),
the last real row flagged terminated or truncated (truncated also where the
sample cuts a still running sequence). A decision's reward is its return,
discounted inside the decision by its own env steps with ``smdp`` discounting
(the plain sum otherwise), and a ``hmarl_discounts`` column holds gamma**k (or
gamma). The learner then computes values and advantages with
:func:`hmarl.advantages.add_advantages`, the same function that serves RLlib's
own sampler. A decision still running at the end of a sample is carried into
the next one, as RLlib carries a hanging action into the next episode chunk.

Stale log-probabilities: a carried decision keeps the ``action_logp`` of the weights
that took it, which the update in between has replaced. On the round-up that is about
65 % of the high level's rows (a decision lasts about 10 env steps, a sample 8 per
env; ``benchmarks/stale_logp.py`` on a trained run). For them PPO's ratio
pi_theta(a|s) / mu(a|s) is taken against mu, the policy that acted, one update old:
the right importance weight for an action mu drew, but PPO's clip range is then
centred on mu, not on the weights the update starts from. So at the first minibatch
their ratio is already off 1 (by 0.06 on average), and 2.8 % of the high level's rows
lie outside the clip range before any gradient step (they give no gradient that pushes
them further out). Left so, as RLlib's own sampler leaves a hanging action's:
recomputing the log-probabilities with the current weights would centre the clip
range but drop the importance weight (a bias of the same size), and decoupling the
two (the "proximal" policy of Hilton et al., 2021, "Batch size-invariance for policy
optimization") would change PPO's loss for an effect on 3 % of the rows.

Memory: for a module with memory (:mod:`hmarl.sequences`) each agent keeps its state
between its decisions: it starts from the module's initial state when the agent's
episode starts, advances when the agent acts, and is held while it waits, also across
samples. Every row keeps the state its agent had before it (a bootstrap row: the state
after the agent's last decision), and the policy's batch is laid out as RLlib's learner
connectors lay it out for such a module: each agent's rows of the sample cut into padded
sequences of ``max_seq_len``, with the state at each sequence's start.

Episode seeds come from the runner's own generator (:mod:`hmarl.seeding`): new
ones after a resume or a restart, never an evaluation seed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import tree
from ray.rllib.core import COMPONENT_RL_MODULE
from ray.rllib.core.columns import Columns
from ray.rllib.env import INPUT_ENV_SINGLE_SPACES, INPUT_ENV_SPACES
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.numpy import convert_to_numpy

from hmarl.advantages import DISCOUNTS
from hmarl.batched_env import BatchedEnv, select, world_time
from hmarl.evaluation import group_policies
from hmarl.faults import RecoversFromEnvFaults
from hmarl.flat_observations import flat_space, flatten
from hmarl.global_state import GLOBAL_STATE
from hmarl.metrics import log_agent_episode, metric_windows
from hmarl.policies import forward, to_torch
from hmarl.seeding import draw_seeds, reseeded, runner_generator
from hmarl.sequences import max_seq_len, to_sequences
from hmarl.task_env import EnvFault

Batch = dict[str, Any]
"""One policy's columns: numpy arrays (a dict of them for structured observations)."""


@dataclass
class _Rows:
    """Rows emitted by one group during a sample, in emission order (sorted at the end)."""

    keys: list[np.ndarray] = field(default_factory=list)
    """(n, 3) per emission: slot, step, and 0 for a decision or 1 for a bootstrap row."""
    columns: list[dict[str, Any]] = field(default_factory=list)

    def add(self, slots: np.ndarray, step: int, bootstrap: bool, columns: dict[str, Any]) -> None:
        keys = np.stack([slots, np.full(len(slots), step), np.full(len(slots), int(bootstrap))], 1)
        self.keys.append(keys)
        self.columns.append(columns)


class BatchedEnvRunner(RecoversFromEnvFaults, EnvRunner, Checkpointable):
    """Samples a task's batched env for RLlib's learners (see the module docstring)."""

    @override(EnvRunner)
    def __init__(self, *, config: Any, **kwargs: Any) -> None:
        # The local runner shares the training process (and its threads); a remote one
        # samples beside other runners, one thread each. RLlib 2.60's EnvRunnerGroup
        # builds the local runner with worker_index=0 and remote ones with 1, 2, ...
        torch.set_num_threads(config.torch_threads if kwargs.get("worker_index", 0) == 0 else 1)
        super().__init__(config=config, **kwargs)
        self.task = config.task
        self.spaces = kwargs.get("spaces") or {}
        self.num_envs = config.num_envs_per_env_runner
        self.smdp = config.discounting == "smdp"
        self.flatten = frozenset(config.flatten_policies)
        self.central = frozenset(config.central_policies)
        self._seeds = runner_generator(config.seed, self.worker_index)
        self._weights_seq_no = 0
        self.sampled_env_steps = 0
        """Env steps the last ``sample`` took (every env stepped together)."""
        self._windows = metric_windows(config.schedule)
        self.env: BatchedEnv | None = None
        if self.worker_index or config.num_env_runners == 0:
            self.make_env()
        self.make_module()

    # -- building ----------------------------------------------------------------------

    @override(EnvRunner)
    def make_env(self) -> None:
        self.env = self.task.make_batched_env(dict(self.config.env_config), self.num_envs)
        self.policies = group_policies(self.task, self.env)
        """Group -> the policy its agents act for."""
        self._state = {g: _Slots(self.env, g) for g in self.env.groups}
        self._needs_reset = True

    @override(EnvRunner)
    def make_module(self) -> None:
        spec = self.config.get_multi_rl_module_spec(spaces=self.get_spaces(), inference_only=True)
        self.module = spec.build()
        self.sequence_lengths = {
            policy: max_seq_len(module, policy)
            for policy, module in self.module.items()
            if module.is_stateful()
        }
        """Policy -> its max_seq_len, for each policy whose module has memory."""
        self.initial_states = {
            policy: convert_to_numpy(self.module[policy].get_initial_state())
            for policy in self.sequence_lengths
        }
        """Policy -> its module's initial state (numpy), where each agent's memory starts."""

    @override(EnvRunner)
    def get_spaces(self) -> dict[str, tuple[gym.Space, gym.Space]]:
        if self.env is None:
            return self.spaces
        spaces: dict[str, tuple[gym.Space, gym.Space]] = {}
        for group, policy in self.policies.items():
            obs = self.env.observation_spaces[group]
            spaces[policy] = (
                flat_space(obs) if policy in self.flatten else obs,
                self.env.action_spaces[group],
            )
        agents = {agent: group for group, members in self.env.groups.items() for agent in members}
        single = (
            gym.spaces.Dict({a: self.env.observation_spaces[g] for a, g in agents.items()}),
            gym.spaces.Dict({a: self.env.action_spaces[g] for a, g in agents.items()}),
        )
        return {INPUT_ENV_SPACES: single, INPUT_ENV_SINGLE_SPACES: single, **spaces}

    @override(EnvRunner)
    def assert_healthy(self) -> None:
        assert self.env is not None and self.module is not None

    # -- sampling ----------------------------------------------------------------------

    @override(EnvRunner)
    def sample(self, *, num_timesteps: int | None = None, **kwargs: Any) -> dict[str, Batch]:
        """At least ``num_timesteps`` env steps (all envs stepped together); a batch per policy."""
        if self._needs_reset:
            self._reset(None)
            self._episodes = _Episodes(self.env)
            self._needs_reset = False
        target = num_timesteps or self.config.get_rollout_fragment_length() * self.num_envs
        rows = {group: _Rows() for group in self.env.groups}
        step = world_steps = 0
        while world_steps < target:
            actions = {group: self._act(group, step, rows[group]) for group in self.env.groups}
            result = self._step(actions)
            elapsed = world_time(result, self.num_envs)
            self._episodes.step(self.env, result, elapsed)
            for group in self.env.groups:
                self._after_step(group, step, result, elapsed, rows[group])
            world_steps += int(elapsed.sum())
            step += 1
            if result.over.any():
                self._log_episodes(result.over)
                self._reset(result.over)
                self._episodes.start(self.env, result.over)
        for group in self.env.groups:
            self._close_sequences(group, step, rows[group])
        self._log_steps(world_steps)
        batches = {
            policy: _assemble([rows[g] for g, p in self.policies.items() if p == policy])
            for policy in dict.fromkeys(self.policies.values())
        }
        return {
            policy: to_sequences(batch, self.sequence_lengths[policy])
            if policy in self.sequence_lengths
            else batch
            for policy, batch in batches.items()
            if batch
        }

    def _reset(self, where: np.ndarray | None) -> None:
        """New episodes in the ``where`` envs (all of them for None)."""
        count = self.num_envs if where is None else int(where.sum())
        try:
            self.env.reset(draw_seeds(self._seeds, count), where=where)
        except Exception as err:
            raise EnvFault(
                f"task {self.task.name}: the batched env's reset failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        self._refresh_states()
        for group, policy in self.policies.items():
            if policy in self.initial_states:  # every agent of a new episode starts afresh
                self._state[group].forget(where, self.initial_states[policy])

    def _step(self, actions: dict[str, np.ndarray]) -> Any:
        try:
            result = self.env.step(actions)
        except Exception as err:
            acting = ", ".join(
                f"{group} ({int(self.env.due(group).sum())} agents)" for group in self.env.groups
            )
            raise EnvFault(
                f"task {self.task.name}: the batched env's step failed (acting: {acting}): "
                f"{type(err).__name__}: {err}"
            ) from err
        self._refresh_states()
        return result

    def _refresh_states(self) -> None:
        """The envs' global states now, when a centralised critic will read them."""
        self._states = self.env.states() if self.central else None

    def _inputs(self, group: str, where: np.ndarray) -> dict[str, Any]:
        """What the ``where`` agents of a group observe now, as their policy's batch holds it:
        the observation (as the module takes it), for a centralised critic the global
        state, and for a module with memory each agent's state now."""
        policy = self.policies[group]
        inputs = {
            Columns.OBS: self._module_input(policy, select(self.env.observations(group), where))
        }
        if policy in self.central:
            envs = np.nonzero(where)[0]
            inputs[GLOBAL_STATE] = _map(lambda states: states[envs], self._states)
        if policy in self.sequence_lengths:
            inputs[Columns.STATE_IN] = _map(lambda state: state[where], self._state[group].memory)
        return inputs

    def _act(self, group: str, step: int, rows: _Rows) -> np.ndarray:
        """Actions of the group's due agents; their decisions start (and earlier ones end)."""
        state = self._state[group]
        due = self.env.due(group)
        space = self.env.action_spaces[group]
        actions = np.zeros(due.shape + space.shape, dtype=space.dtype)
        if not due.any():
            return actions
        policy = self.policies[group]
        inputs = self._inputs(group, due)
        module = self.module[policy]
        memory = inputs.get(Columns.STATE_IN)
        with torch.no_grad():
            dist_inputs, after = forward(
                module,
                to_torch(inputs[Columns.OBS]),
                None if memory is None else to_torch(memory),
                explore=True,
            )
            dist = module.get_exploration_action_dist_cls().from_logits(dist_inputs)
            chosen = dist.sample()
            logp = dist.logp(chosen)
        chosen = chosen.numpy()
        if after is not None:
            state.remember(due, _map(lambda s: s.numpy(), after))
        state.complete(due & state.pending, step, rows, terminated=None, truncated=None)
        state.start(due, inputs, chosen, logp.numpy(), dist_inputs.numpy())
        actions[due] = chosen
        return actions

    def _after_step(
        self, group: str, step: int, result: Any, elapsed: np.ndarray, rows: _Rows
    ) -> None:
        state = self._state[group]
        rewards = result.rewards[group]
        # Each policy's own gamma (RLlib's per-module overrides; the run's by default).
        gamma = self.config.get_config_for_module(self.policies[group]).gamma
        state.collect(rewards, gamma, self.smdp, elapsed)
        ended = result.terminated[group] | result.truncated[group]
        if not ended.any():
            return
        policy = self.policies[group]
        state.complete(
            ended & state.pending,
            step,
            rows,
            terminated=result.terminated[group],
            truncated=result.truncated[group],
        )
        closing = ended & state.open
        state.bootstrap(closing, self._inputs(group, closing), step, rows)
        infos = {key: values[ended] for key, values in result.infos[group].items()}
        for i, episode_return in enumerate(self._episodes.returns[group][ended]):
            info = {key: values[i] for key, values in infos.items()}
            log_agent_episode(
                self.metrics, self.task.metrics, policy, episode_return, info, self._windows
            )

    def _close_sequences(self, group: str, steps: int, rows: _Rows) -> None:
        """End a sample as RLlib's env runner ends its episode chunks.

        An agent that observes now has finished its decision within the sample: its
        row goes out, with a bootstrap row of what it observes now. An agent inside
        a decision carries it into the next sample; rows it already has get a
        bootstrap row of the observation (and state) that decision started from.
        """
        state = self._state[group]
        due = self.env.due(group)
        state.complete(due & state.pending, steps, rows, terminated=None, truncated=None)
        closing = due & state.open
        state.bootstrap(closing, self._inputs(group, closing), steps, rows)
        waiting = state.open.copy()
        if waiting.any():
            started = {
                key: _map(lambda column: column[waiting], state.columns[key])
                for key in (Columns.OBS, GLOBAL_STATE, Columns.STATE_IN)
                if key in state.columns
            }
            state.bootstrap(waiting, started, steps, rows)

    def _module_input(self, policy: str, obs: Any) -> Any:
        """Observation rows as the policy's module takes them (flattened for RLlib's MLPs)."""
        if policy not in self.flatten:
            return obs
        group = next(g for g, p in self.policies.items() if p == policy)
        return flatten(obs, self.env.observation_spaces[group])

    def reseed(self, *salt: int) -> None:
        """New episodes from here on, from a generator of the run's seed and ``salt``."""
        self._seeds = reseeded(self.config.seed, self.worker_index, *salt)
        if self.env is not None:  # the episodes in progress are dropped, like their decisions
            self._state = {g: _Slots(self.env, g) for g in self.env.groups}
            self._needs_reset = True

    # -- metrics -----------------------------------------------------------------------

    def _log_steps(self, env_steps: int) -> None:
        """RLlib's counts of a sample: env steps (of world time), and observations per agent
        and per module."""
        self.sampled_env_steps = env_steps
        self.metrics.log_value(WEIGHTS_SEQ_NO, self._weights_seq_no, window=1)
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED, env_steps, reduce="sum")
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME, env_steps, reduce="lifetime_sum", with_throughput=True
        )
        self.num_env_steps_sampled_lifetime += env_steps
        # As RLlib 2.60's MultiAgentEnvRunner._increase_sampled_metrics: an agent step is
        # an observation after an env step (final ones included), keyed by agent id; a
        # module step is one of its agents'.
        for group, agents in self.env.groups.items():
            policy = self.policies[group]
            for agent, count in zip(agents, self._episodes.take_observed(group), strict=True):
                if not count:
                    continue
                for key, reduce in (
                    ((NUM_AGENT_STEPS_SAMPLED, agent), "sum"),
                    ((NUM_AGENT_STEPS_SAMPLED_LIFETIME, agent), "lifetime_sum"),
                    ((NUM_MODULE_STEPS_SAMPLED, policy), "sum"),
                    ((NUM_MODULE_STEPS_SAMPLED_LIFETIME, policy), "lifetime_sum"),
                ):
                    self.metrics.log_value(key, int(count), reduce=reduce)

    def _log_episodes(self, over: np.ndarray) -> None:
        """RLlib's episode metrics, under its names, for each env whose episode is ``over``."""
        count = int(over.sum())
        self.metrics.log_value(NUM_EPISODES, count, reduce="sum")
        self.metrics.log_value(NUM_EPISODES_LIFETIME, count, reduce="lifetime_sum")
        for episode in self._episodes.finished(self.env, self.policies, over):
            # RLlib 2.60's own MultiAgentEnvRunner._log_episode_metrics (a private method,
            # env/multi_agent_env_runner.py), called with this runner as its ``self``: it
            # reads only ``self.config`` (metrics_num_episodes_for_smoothing,
            # num_env_runners) and ``self.metrics``, and logs the episode's length,
            # return, duration, per-agent and per-module returns and per-agent steps
            # with its windows and min/max. So both samplers report the same keys
            # (tests/test_sampler.py::test_both_samplers_report_rllibs_metrics).
            MultiAgentEnvRunner._log_episode_metrics(self, **episode)

    @override(EnvRunner)
    def get_metrics(self) -> dict[str, Any]:
        return self.metrics.reduce()

    # -- state -------------------------------------------------------------------------

    @override(Checkpointable)
    def get_state(
        self, components: Any = None, *, not_components: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: self.num_env_steps_sampled_lifetime,
        }
        if self._check_component(COMPONENT_RL_MODULE, components, not_components):
            state[COMPONENT_RL_MODULE] = self.module.get_state(
                components=self._get_subcomponents(COMPONENT_RL_MODULE, components),
                not_components=self._get_subcomponents(COMPONENT_RL_MODULE, not_components),
                **kwargs,
            )
            state[WEIGHTS_SEQ_NO] = self._weights_seq_no
        return state

    @override(Checkpointable)
    def set_state(self, state: dict[str, Any]) -> None:
        if COMPONENT_RL_MODULE in state:
            seq_no = state.get(WEIGHTS_SEQ_NO, 0)
            # As RLlib's env runners: take weights that are newer than ours (0: always).
            if seq_no == 0 or self._weights_seq_no < seq_no:
                weights = state[COMPONENT_RL_MODULE]
                if not isinstance(weights, dict):  # an ObjectRef from a remote learner
                    import ray

                    weights = ray.get(weights)
                self.module.set_state(weights)
            if seq_no > 0:
                self._weights_seq_no = seq_no
        if NUM_ENV_STEPS_SAMPLED_LIFETIME in state:
            self.num_env_steps_sampled_lifetime = state[NUM_ENV_STEPS_SAMPLED_LIFETIME]

    @override(Checkpointable)
    def get_ctor_args_and_kwargs(self) -> tuple:
        return (), {"config": self.config}

    @override(Checkpointable)
    def get_checkpointable_components(self) -> list:
        return [(COMPONENT_RL_MODULE, self.module)]

    @override(EnvRunner)
    def stop(self) -> None:
        self.env = None


class _Episodes:
    """Each env's running episode, as RLlib's episode metrics need it; arrays are (B, N).

    Agents are never revived, so an agent's return since its episode began is its
    episode return, also once it has ended (and still while its env's episode runs).
    """

    def __init__(self, env: BatchedEnv) -> None:
        shape = {g: (env.num_envs, len(agents)) for g, agents in env.groups.items()}
        self.returns = {g: np.zeros(s) for g, s in shape.items()}
        """Rewards of each agent since its episode began."""
        self.steps = {g: np.zeros(s, dtype=np.int64) for g, s in shape.items()}
        """Actions of each agent since its episode began (RLlib's agent steps)."""
        self.seen = {g: np.zeros(s, dtype=bool) for g, s in shape.items()}
        """Agents that have observed in the episode (RLlib's episode holds only those)."""
        self.observed = {g: np.zeros(s[1], dtype=np.int64) for g, s in shape.items()}
        """Observations after env steps per agent, since the last sample's counts."""
        self.length = np.zeros(env.num_envs, dtype=np.int64)
        self.began = np.zeros(env.num_envs)
        self.start(env, None)

    def start(self, env: BatchedEnv, where: np.ndarray | None) -> None:
        """New episodes in the envs ``where`` (all if None): each due agent will act."""
        where = np.ones(env.num_envs, dtype=bool) if where is None else where
        for group in env.groups:
            due = env.due(group) & where[:, None]
            for tally in (self.returns, self.steps, self.seen):
                tally[group][where] = 0
            self.steps[group] += due
            self.seen[group] |= due
        self.length[where] = 0
        self.began[where] = time.perf_counter()

    def step(self, env: BatchedEnv, result: Any, elapsed: np.ndarray) -> None:
        """One env step (``elapsed`` (B,) its world time): its rewards, and what every agent
        observes after it."""
        self.length += elapsed
        for group in env.groups:
            self.returns[group] += result.rewards[group]
            due = env.due(group)
            observes = due | result.terminated[group] | result.truncated[group]
            self.observed[group] += observes.sum(axis=0)
            self.steps[group] += due
            self.seen[group] |= observes

    def take_observed(self, group: str) -> np.ndarray:
        """Each agent's observations since the last call (RLlib's agent steps sampled)."""
        counts = self.observed[group].copy()
        self.observed[group][:] = 0
        return counts

    def finished(
        self, env: BatchedEnv, policies: Mapping[str, str], over: np.ndarray
    ) -> list[dict[str, Any]]:
        """The arguments of RLlib's ``_log_episode_metrics`` for each env that is ``over``."""
        now = time.perf_counter()
        episodes = []
        for b in np.flatnonzero(over):
            agents: dict[str, float] = {}
            modules: dict[str, float] = {}
            agent_steps: dict[str, int] = {}
            for group, ids in env.groups.items():
                for n in np.flatnonzero(self.seen[group][b]):
                    ret = float(self.returns[group][b, n])
                    agents[ids[n]] = ret
                    modules[policies[group]] = modules.get(policies[group], 0.0) + ret
                    agent_steps[ids[n]] = int(self.steps[group][b, n])
            episodes.append(
                {
                    "length": int(self.length[b]),
                    "ret": sum(agents.values()),
                    "sec": now - float(self.began[b]),
                    "agents": agents,
                    "modules": modules,
                    "agent_steps": agent_steps,
                }
            )
        return episodes


class _Slots:
    """Per agent of one group (arrays are (B, N)): the decision in progress and its return."""

    def __init__(self, env: BatchedEnv, group: str) -> None:
        shape = (env.num_envs, len(env.groups[group]))
        self.width = shape[1]
        self.pending = np.zeros(shape, dtype=bool)
        """Agents inside a decision (it ends when they observe again)."""
        self.open = np.zeros(shape, dtype=bool)
        """Agents with decision rows in this sample not yet followed by a bootstrap row."""
        self.ret = np.zeros(shape)
        self.discount = np.ones(shape)
        """Each decision's discount so far: gamma per world step since it started."""
        self.last_discount = np.ones(shape)
        """The discount its last world step's reward got (a zero-time step's rewards count
        with that step's, as hmarl.task_env counts them)."""
        self.columns: dict[str, Any] | None = None
        self.memory: Any = None
        """For a module with memory: each agent's state now (arrays (B, N, ...))."""

    def forget(self, where: np.ndarray | None, initial: Any) -> None:
        """The ``where`` envs' agents (every env's for None) start from ``initial``."""
        if self.memory is None:
            self.memory = _map(
                lambda s: np.zeros(self.pending.shape + s.shape, dtype=s.dtype), initial
            )
        rows = slice(None) if where is None else where
        for memory, state in zip(tree.flatten(self.memory), tree.flatten(initial), strict=True):
            memory[rows] = state

    def remember(self, due: np.ndarray, states: Any) -> None:
        """The ``due`` agents' states after their decisions (rows in ``due`` order)."""
        _assign(self.memory, due, states)

    def start(
        self,
        due: np.ndarray,
        inputs: dict[str, Any],
        actions: np.ndarray,
        logp: np.ndarray,
        dist_inputs: np.ndarray,
    ) -> None:
        """The ``due`` agents start decisions from ``inputs`` (observation, maybe state)."""
        new = {
            **inputs,
            Columns.ACTIONS: actions,
            Columns.ACTION_LOGP: logp,
            Columns.ACTION_DIST_INPUTS: dist_inputs,
        }
        if self.columns is None:
            self.columns = _map(
                lambda rows: np.zeros(self.pending.shape + rows.shape[1:], rows.dtype), new
            )
        _assign(self.columns, due, new)
        self.pending |= due
        self.ret[due] = 0.0
        self.discount[due] = 1.0
        self.last_discount[due] = 1.0

    def collect(self, rewards: np.ndarray, gamma: float, smdp: bool, elapsed: np.ndarray) -> None:
        """A step's rewards: each counted at its own world step within the decision (smdp);
        ``elapsed`` (B,) is the world time the step took in each env."""
        if not smdp:
            self.ret += np.where(self.pending, rewards, 0.0)
            self.discount = np.where(self.pending, gamma, self.discount)
            return
        moved = self.pending & (elapsed[:, None] > 0)
        # A reward at the end of k world steps is discounted by the first k - 1 of them.
        ahead = np.where(moved, self.discount * gamma ** (elapsed[:, None] - 1.0), 0.0)
        self.last_discount = np.where(moved, ahead, self.last_discount)
        self.ret += np.where(self.pending, self.last_discount * rewards, 0.0)
        self.discount = np.where(moved, self.discount * gamma ** elapsed[:, None], self.discount)

    def complete(
        self,
        done: np.ndarray,
        step: int,
        rows: _Rows,
        terminated: np.ndarray | None,
        truncated: np.ndarray | None,
    ) -> None:
        """Emit the decisions of the ``done`` agents as rows."""
        if not done.any():
            return
        columns = _map(lambda column: column[done], self.columns)
        n = int(done.sum())
        columns |= {
            Columns.REWARDS: self.ret[done].astype(np.float32),
            DISCOUNTS: self.discount[done].astype(np.float32),
            Columns.TERMINATEDS: np.zeros(n, bool) if terminated is None else terminated[done],
            Columns.TRUNCATEDS: np.zeros(n, bool) if truncated is None else truncated[done],
            Columns.LOSS_MASK: np.ones(n, bool),
        }
        rows.add(self._slots(done), step, False, columns)
        self.pending &= ~done
        self.open |= done

    def bootstrap(self, where: np.ndarray, inputs: dict[str, Any], step: int, rows: _Rows) -> None:
        """A bootstrap row after each ``where`` agent's rows: ``inputs``, its latest observation
        (and state).

        ``where`` holds only agents with open rows; ``inputs`` has a row for each.
        """
        if not where.any():
            return
        n = int(where.sum())
        filler = _map(
            lambda column: np.zeros((n, *column.shape[2:]), column.dtype),
            {k: v for k, v in self.columns.items() if k not in inputs},
        )
        columns = {
            **inputs,
            **filler,
            Columns.REWARDS: np.zeros(n, np.float32),
            DISCOUNTS: np.ones(n, np.float32),
            Columns.TERMINATEDS: np.zeros(n, bool),
            Columns.TRUNCATEDS: np.zeros(n, bool),
            Columns.LOSS_MASK: np.zeros(n, bool),
        }
        rows.add(self._slots(where), step, True, columns)
        self.open &= ~where

    def _slots(self, where: np.ndarray) -> np.ndarray:
        b, n = np.nonzero(where)
        return b * self.width + n


def _assemble(groups: list[_Rows]) -> Batch:
    """One policy's rows, each agent's in time order, its bootstrap row after them.

    A bootstrap row that follows a decision not ended by the env marks where the
    sample cut a running sequence: that decision gets the truncated flag (its
    value is bootstrapped and its advantage does not reach across the cut).
    """
    keys, columns = [], []
    for offset, group in enumerate(groups):
        for k in group.keys:
            keys.append(k + np.array([offset << 32, 0, 0]))
        columns.extend(group.columns)
    if not keys:
        return {}
    keys = np.concatenate(keys)
    batch = concatenate_columns(columns)
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    batch = _map(lambda column: column[order], batch)
    bootstrap = np.flatnonzero(~batch[Columns.LOSS_MASK])
    before = bootstrap - 1
    cut = ~batch[Columns.TERMINATEDS][before] & ~batch[Columns.TRUNCATEDS][before]
    batch[Columns.TRUNCATEDS][before[cut]] = True
    return batch


def _map(fn: Any, columns: Any) -> Any:
    if isinstance(columns, Mapping):
        return {key: _map(fn, value) for key, value in columns.items()}
    return fn(columns)


def _assign(target: dict[str, Any], where: np.ndarray, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping):
            _assign(target[key], where, value)
        else:
            target[key][where] = value


def concatenate_columns(parts: list[dict[str, Any]]) -> dict[str, Any]:
    first = parts[0]
    return {
        key: concatenate_columns([p[key] for p in parts])
        if isinstance(first[key], Mapping)
        else np.concatenate([p[key] for p in parts])
        for key in first
    }
