"""RLlib's own multi-agent env runner, as hmarl runs it (``--sampler rllib``).

:class:`StockEnvRunner` is RLlib 2.60's ``MultiAgentEnvRunner`` with four changes:

- a fault of the task's env rebuilds the env instead of ending the process
  (:class:`hmarl.faults.RecoversFromEnvFaults`);
- after a resume or a restart it draws its episodes from a new stream (:meth:`reseed`,
  see :mod:`hmarl.seeding`), and it visits agents in the order of their ids, in every
  process (``hmarl.seeding.visit_agents_in_order``);
- its env-step counters count world time: a step that took none (a decision step,
  see :mod:`hmarl.task_env`) counts 0, so ``num_env_steps_sampled``, the sample's
  length, throughput and ``--stop-timesteps`` are in world steps, as hmarl's batched
  sampler counts them;
- with a module that has memory (:mod:`hmarl.sequences`), the episode chunk that
  continues a running episode after a sample keeps every running agent's last decision
  in its lookback, so that agent acts on, and learns from, the state its last decision
  left (:class:`MemoryEpisode`).

**Why the last change.** At the end of a sample RLlib 2.60 cuts each running episode
(``MultiAgentEpisode.cut``) with a lookback of ``episode_lookback_horizon`` env steps (1),
lengthened only for agents with an action still hanging (back to their last
observation). An agent that acts now and then (a high level) whose last decision lies
further back then continues in a chunk with no ``STATE_OUT`` in its lookback: its next
action is taken from the module's *initial* state (``AddStatesFromEpisodesToBatch`` as an
env-to-module piece falls back to it) and the learner's ``AddStatesFromEpisodesToBatch``
raises an ``IndexError`` for nested states (an LSTM's) or silently takes the chunk's own
last state as its first (ray-project/ray issue 60205). Falling back to the initial state
there (the fix proposed in ray PR 64081) would make memory forget at every sample
boundary. Here the cut looks back far enough for each running agent's last decision
instead: to the observation it was taken from.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.utils.annotations import override

from hmarl.faults import RecoversFromEnvFaults


class StockEnvRunner(RecoversFromEnvFaults, MultiAgentEnvRunner):
    """RLlib's own multi-agent env runner, as hmarl runs it (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from hmarl.seeding import visit_agents_in_order

        visit_agents_in_order()  # the same seed, the same samples, in every process
        super().__init__(*args, **kwargs)
        self._remembers = any(module.is_stateful() for module in self.module.values())
        """Whether some module has memory (then episodes are cut as MemoryEpisode cuts)."""

    @override(MultiAgentEnvRunner)
    def _new_episode(self, env_index: int, episodes: list | None = None) -> None:
        # RLlib 2.60.0's MultiAgentEnvRunner builds every new episode here (at resets,
        # and when one ends inside a sample) as a plain MultiAgentEpisode, and cuts the
        # running ones at the end of _sample with `eps.cut(...)`; MemoryEpisode only
        # changes how far that cut looks back. tests/test_memory.py::
        # test_each_agent_carries_its_own_state[rllib] fails if RLlib stops building
        # episodes here or cutting them with `cut`.
        super()._new_episode(env_index, episodes)
        if self._remembers:
            built = episodes if episodes is not None else self._ongoing_episodes
            built[env_index].__class__ = MemoryEpisode

    def reseed(self, *salt: int) -> None:
        """New episodes from the next sample on (see :mod:`hmarl.seeding`).

        RLlib 2.60's runner seeds its envs with ``self._seed`` at the reset that
        ``_needs_initial_reset`` asks for (``MultiAgentEnvRunner._reset_envs``).
        """
        from hmarl.seeding import draw_seeds, reseeded

        (self._seed,) = draw_seeds(reseeded(self.config.seed, self.worker_index, *salt), 1)
        self._needs_initial_reset = True

    @override(MultiAgentEnvRunner)
    def _increase_sampled_metrics(self, num_steps: int, next_obs: Any, episode: Any) -> int:
        # RLlib 2.60.0's MultiAgentEnvRunner._sample calls this once per sub-env step
        # with num_steps=1, logs NUM_ENV_STEPS_SAMPLED(_LIFETIME) from it, and adds its
        # result to the step count that ends the sample; the agent and module counts it
        # logs are per step. Here num_steps is the world time the sub-env's step took,
        # which hmarl's env wrapper (StampedEnv, the innermost env of each sub-env)
        # recorded. tests/test_goals.py::test_decision_steps_take_no_world_time fails
        # if RLlib stops calling this.
        index = next(i for i, e in enumerate(self._ongoing_episodes) if e is episode)
        elapsed = self.env.envs[index].unwrapped.last_elapsed
        return super()._increase_sampled_metrics(elapsed, next_obs, episode)


class MemoryEpisode(MultiAgentEpisode):
    """A ``MultiAgentEpisode`` whose cut keeps each running agent's last decision in the
    successor's lookback (see the module docstring)."""

    __slots__ = ()  # the same layout as MultiAgentEpisode's, so an episode can become one

    @override(MultiAgentEpisode)
    def cut(self, len_lookback_buffer: int = 0) -> MultiAgentEpisode:
        successor = super().cut(max(len_lookback_buffer, decision_lookback(self)))
        successor.__class__ = MemoryEpisode  # RLlib's cut builds a plain MultiAgentEpisode
        return successor


def decision_lookback(episode: MultiAgentEpisode) -> int:
    """The env steps a cut must look back for every running agent's last finished decision:
    to the observation it was taken from, the agent's second to last.

    ``env_t_to_agent_t[agent].data`` (RLlib 2.60.0, a public attribute of a private
    layout) holds, for each env step of the chunk, lookback included, the agent's step
    index or ``SKIP_ENV_TS_TAG`` where it did not observe; ``cut(n)`` keeps the
    observations of the last n + 1 env steps, and the agents' actions and model outputs
    between them. tests/test_memory.py::
    test_rllibs_cut_loses_a_sparse_deciders_memory_and_hmarls_keeps_it fails if that
    changes.
    """
    needed = 0
    for agent, steps in episode.env_t_to_agent_t.items():
        if episode.agent_episodes[agent].is_done:
            continue
        seen = 0
        for back, step in enumerate(reversed(steps.data), start=1):
            if step != episode.SKIP_ENV_TS_TAG:
                seen += 1
                if seen == 2:
                    needed = max(needed, back - 1)
                    break
    return needed
