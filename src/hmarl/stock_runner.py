"""RLlib's own multi-agent env runner, as hmarl runs it (``--sampler rllib``).

:class:`StockEnvRunner` is RLlib 2.60's ``MultiAgentEnvRunner`` with three changes:

- a fault of the task's env rebuilds the env instead of ending the process
  (:class:`hmarl.faults.RecoversFromEnvFaults`);
- after a resume or a restart it draws its episodes from a new stream (:meth:`reseed`,
  see :mod:`hmarl.seeding`), and it visits agents in the order of their ids, in every
  process (``hmarl.seeding.visit_agents_in_order``);
- its env-step counters count world time: a step that took none (a decision step,
  see :mod:`hmarl.task_env`) counts 0, so ``num_env_steps_sampled``, the sample's
  length, throughput and ``--stop-timesteps`` are in world steps, as hmarl's batched
  sampler counts them.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.annotations import override

from hmarl.faults import RecoversFromEnvFaults


class StockEnvRunner(RecoversFromEnvFaults, MultiAgentEnvRunner):
    """RLlib's own multi-agent env runner, as hmarl runs it (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from hmarl.seeding import visit_agents_in_order

        visit_agents_in_order()  # the same seed, the same samples, in every process
        super().__init__(*args, **kwargs)

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
