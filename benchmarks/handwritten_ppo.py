"""A hand-written PPO for the chicken yard: the time hmarl's training has to beat.

The contestant a user could write without RLlib, in one file and one process, CleanRL
style: the same rules (:class:`~hmarl.tasks.chicken_yard.batched.BatchedYard`, many
yards stepped as arrays), the same two networks (the task's RL modules, called
directly through ``_heads``), plain torch Adam; no Ray, no Learner, no Algorithm.
hmarl's time-to-quality benchmark is to print its time beside hmarl's, measured in
the same run: :func:`time_to_quality` (one seed) or :func:`train` (any evaluator).

PPO per level, each robot's high and low agent an independent sequence:

- Low level: GAE over each robot's moves. The yard's time limit terminates (a
  time-out is a failure with a price, nothing is bootstrapped past it); a walk that
  a rollout cuts short is bootstrapped from the value of its latest observation.
- High level: one decision per robot-episode, discounted once per decision (the
  task's ``discounting="per-decision"``), so its advantage is its reward minus its
  value. Its reward comes when the robot arrives or times out, often rollouts later:
  the decision waits until then, as RLlib carries an action still running into the
  next sample.
- The task's schedule: the high level's policy is held (its value function trains)
  until the low level's success over the last 200 finished robots reaches 0.9.
- Clipped surrogate, squared-error value loss, entropy bonus; advantages
  standardised per level and update, as hmarl does. Unlike hmarl's RLlib PPO there
  is no KL penalty (RLlib's default adds one) and the value loss is not clamped
  (RLlib clamps it at 10, which returns within [-2, 1] hardly reach); like it, no
  gradient clipping.

Quality is ``benchmarks/time_to_quality.py``'s: normalised high-level score >= 0.9
and low-level success >= 0.99 on the 500 held-out evaluation episodes. Training
yards are seeded below 1,000,000,000, where the evaluation seeds start. The clock
starts when :func:`train` is called (imports excluded) and stops while an
evaluation runs.

Run: ``python benchmarks/handwritten_ppo.py [--seeds 5] [--budget 60]``
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from spread import interval
from torch.distributions import Categorical

from hmarl.batched_env import select
from hmarl.evaluation import EVAL_SEED_BASE, compare, episode_seeds
from hmarl.tasks.chicken_yard import TASK
from hmarl.tasks.chicken_yard.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY
from hmarl.tasks.chicken_yard.batched import BatchedYard

SCORE, SUCCESS = 0.9, 0.99
EPISODES = 500
# The task's networks (class and model_config per policy), as hmarl builds them. Reading
# them imports RLlib, seconds of work that belong to no training run: done here, once.
SPECS = TASK.module_specs()


@dataclass
class Args:
    """Hyperparameters: hmarl's defaults, but for the rollout and minibatch sizes."""

    num_yards: int = 256
    """yards stepped together"""
    num_steps: int = 8
    """steps of every yard per rollout (one update per rollout): frequent small updates
    reached quality sooner than hmarl's 4000-step batches in short tuning runs"""
    lr: float = 1e-3
    """Adam learning rate of both levels"""
    gamma: float = 0.99
    """discount per decision"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    num_epochs: int = 4
    """passes over each level's samples per update"""
    minibatch_size: int = 4096
    """samples per gradient step, per level (4096: a whole rollout of the low level)"""
    clip_coef: float = 0.3
    """surrogate clipping (RLlib's PPO default)"""
    ent_coef: float = 0.003
    """entropy bonus"""
    vf_coef: float = 1.0
    """value loss weight (RLlib's default)"""
    schedule_threshold: float = 0.9
    """low-level success that releases the high level's policy (the task's schedule)"""
    schedule_window: int = 200
    """finished robots that success is measured over"""
    checkpoint_every_s: float = 0.5
    """training seconds between two greedy policies handed to the evaluator"""


class GreedyPolicy:
    """Argmax of a snapshot of the modules' logits: ``act(policy_id, obs) -> actions``."""

    def __init__(self, modules: Mapping[str, Any]) -> None:
        self.modules = {policy: copy.deepcopy(module) for policy, module in modules.items()}

    def act(self, policy_id: str, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            logits, _ = self.modules[policy_id]._heads(to_torch(obs))
        return logits.argmax(-1).numpy()


@dataclass
class TrainResult:
    """What a training run did, for its rate."""

    seconds: float
    """training time when it stopped (evaluations excluded)"""
    robot_steps: int
    """actions taken by robots: one per robot per yard step while it chooses or walks"""
    schedule_opened_s: float | None
    """training time when the high level's policy was released (None: never)"""


def to_torch(obs: Mapping[str, np.ndarray], leading: int = 1) -> dict[str, torch.Tensor]:
    """Observation arrays as float32 tensors, their first ``leading`` axes merged into one."""
    return {
        key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).flatten(0, leading - 1)
        for key, value in obs.items()
    }


def ppo_update(
    module: Any,
    optimizer: torch.optim.Optimizer,
    obs: dict[str, torch.Tensor],
    actions: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    args: Args,
    train_policy: bool,
) -> None:
    """PPO's epochs over one level's samples; a held level trains its value function only."""
    # Population std, as hmarl's: a batch of one decision gets advantage 0, not NaN.
    advantages = (advantages - advantages.mean()) / advantages.std(correction=0).clamp_min(1e-4)
    for _ in range(args.num_epochs):
        for rows in torch.randperm(len(actions)).split(args.minibatch_size):
            logits, values = module._heads({key: value[rows] for key, value in obs.items()})
            loss = args.vf_coef * (values - returns[rows]).pow(2).mean()
            if train_policy:
                dist = Categorical(logits=logits)
                ratio = (dist.log_prob(actions[rows]) - old_logp[rows]).exp()
                clipped = ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)
                surrogate = torch.min(ratio * advantages[rows], clipped * advantages[rows])
                loss = loss - surrogate.mean() - args.ent_coef * dist.entropy().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def train(
    seed: int,
    budget_s: float,
    on_checkpoint: Callable[[GreedyPolicy, float], bool],
    args: Args | None = None,
) -> TrainResult:
    """Train both levels for ``budget_s`` seconds of training time.

    Every ``args.checkpoint_every_s`` seconds of training, ``on_checkpoint(policy,
    elapsed_s)`` gets a greedy snapshot (a :class:`hmarl.task.Policy`) and the training
    seconds so far; the clock stops while it runs, and training stops when it returns
    True.
    """
    args = args or Args()
    start = time.perf_counter()
    paused = 0.0  # seconds spent in on_checkpoint, off the training clock

    def elapsed() -> float:
        return time.perf_counter() - start - paused

    # Small networks under contention: one thread is far faster than two.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = BatchedYard(TASK.env_config(), args.num_yards)
    groups = {HIGH_LEVEL_POLICY: "high", LOW_LEVEL_POLICY: "low"}
    modules = {
        policy: SPECS[policy].module_class(
            observation_space=env.observation_spaces[group],
            action_space=env.action_spaces[group],
            model_config=SPECS[policy].model_config,
        )
        for policy, group in groups.items()
    }
    high, low = modules[HIGH_LEVEL_POLICY], modules[LOW_LEVEL_POLICY]
    optimizers = {p: torch.optim.Adam(m.parameters(), lr=args.lr) for p, m in modules.items()}

    # Rollout storage of the low level: a row per (step, robot); `acted` marks the
    # robots that were walking, the only rows that train.
    b, r, t_max = args.num_yards, env.config.num_robots, args.num_steps
    n = b * r
    low_space = env.observation_spaces["low"]
    low_obs = {key: torch.zeros((t_max, n, *space.shape)) for key, space in low_space.items()}
    low_actions = torch.zeros((t_max, n), dtype=torch.int64)
    low_logp = torch.zeros((t_max, n))
    low_values = torch.zeros((t_max, n))
    low_rewards = torch.zeros((t_max, n))
    low_ended = torch.zeros((t_max, n))
    acted = torch.zeros((t_max, n), dtype=torch.bool)

    # Each robot's high-level decision waits here until its reward comes in...
    high_space = env.observation_spaces["high"]
    pending_obs = {key: np.zeros((b, r, *s.shape), np.float32) for key, s in high_space.items()}
    pending_action = np.zeros((b, r), dtype=np.int64)
    pending_logp = np.zeros((b, r), dtype=np.float32)
    # ... and then joins the decisions complete for the next update.
    done_obs: list[dict[str, np.ndarray]] = []
    done_action: list[np.ndarray] = []
    done_logp: list[np.ndarray] = []
    done_reward: list[np.ndarray] = []

    successes: deque[bool] = deque(maxlen=args.schedule_window)
    schedule_opened_s = None
    robot_steps = 0
    env.reset(rng.integers(EVAL_SEED_BASE, size=b).tolist())
    next_checkpoint = args.checkpoint_every_s
    while elapsed() < budget_s:
        # -- rollout: every yard steps num_steps times; finished yards restart at once
        with torch.no_grad():
            for t in range(t_max):
                actions = {"high": np.zeros((b, r), np.int64), "low": np.zeros((b, r), np.int64)}
                choosing = env.due("high")
                if choosing.any():
                    obs = select(env.observations("high"), choosing)
                    logits, _ = high._heads(to_torch(obs))
                    dist = Categorical(logits=logits)
                    chosen = dist.sample()
                    actions["high"][choosing] = chosen.numpy()
                    for key, value in obs.items():
                        pending_obs[key][choosing] = value
                    pending_action[choosing] = chosen.numpy()
                    pending_logp[choosing] = dist.log_prob(chosen).numpy()
                # The low network runs on every robot (one batch of fixed shape); the
                # env reads the actions of the walking ones, and only their rows train.
                walking = env.due("low")
                obs_t = to_torch(env.observations("low"), leading=2)
                logits, values = low._heads(obs_t)
                dist = Categorical(logits=logits)
                moves = dist.sample()
                actions["low"] = moves.numpy().reshape(b, r)
                for key, value in obs_t.items():
                    low_obs[key][t] = value
                low_actions[t], low_logp[t], low_values[t] = moves, dist.log_prob(moves), values
                acted[t] = torch.from_numpy(walking.ravel())

                step = env.step(actions)
                robot_steps += int(choosing.sum() + walking.sum())
                low_rewards[t] = torch.from_numpy(step.rewards["low"].ravel())
                ended = step.terminated["low"]  # arrivals and time-outs alike
                low_ended[t] = torch.from_numpy(ended.ravel())
                successes.extend(step.arrived[ended].tolist())
                finished = step.terminated["high"]
                if finished.any():
                    done_obs.append({key: value[finished] for key, value in pending_obs.items()})
                    done_action.append(pending_action[finished])
                    done_logp.append(pending_logp[finished])
                    done_reward.append(step.rewards["high"][finished])
                if step.over.any():
                    seeds = rng.integers(EVAL_SEED_BASE, size=int(step.over.sum()))
                    env.reset(seeds.tolist(), where=step.over)

            # -- low-level GAE, backwards, each robot's state carried over the rows where
            # it did not walk. A walk still going at the cut bootstraps from its latest
            # observation; an ended one (arrival or time-out) has no next value.
            _, next_value = low._heads(to_torch(env.observations("low"), leading=2))
            last_advantage = torch.zeros(n)
            low_advantages = torch.zeros((t_max, n))
            for t in reversed(range(t_max)):
                live = 1.0 - low_ended[t]
                delta = low_rewards[t] + args.gamma * live * next_value - low_values[t]
                advantage = delta + args.gamma * args.gae_lambda * live * last_advantage
                low_advantages[t] = advantage
                last_advantage = torch.where(acted[t], advantage, last_advantage)
                next_value = torch.where(acted[t], low_values[t], next_value)
            low_returns = low_advantages + low_values

        # -- the schedule: a latch, decided on a full window of finished robots
        if (
            schedule_opened_s is None
            and len(successes) == successes.maxlen
            and np.mean(successes) >= args.schedule_threshold
        ):
            schedule_opened_s = elapsed()

        # -- PPO updates, one level at a time
        rows = acted.flatten()
        ppo_update(
            low,
            optimizers[LOW_LEVEL_POLICY],
            {key: value.flatten(0, 1)[rows] for key, value in low_obs.items()},
            low_actions.flatten()[rows],
            low_logp.flatten()[rows],
            low_advantages.flatten()[rows],
            low_returns.flatten()[rows],
            args,
            train_policy=True,
        )
        if done_action:
            obs = to_torch({key: np.concatenate([d[key] for d in done_obs]) for key in high_space})
            rewards = torch.from_numpy(np.concatenate(done_reward)).float()
            with torch.no_grad():
                _, values = high._heads(obs)
            # One decision, then the robot's episode is over: no next value to add.
            ppo_update(
                high,
                optimizers[HIGH_LEVEL_POLICY],
                obs,
                torch.from_numpy(np.concatenate(done_action)),
                torch.from_numpy(np.concatenate(done_logp)),
                rewards - values,
                rewards,
                args,
                train_policy=schedule_opened_s is not None,
            )
            done_obs, done_action, done_logp, done_reward = [], [], [], []

        if elapsed() >= next_checkpoint:
            now = elapsed()
            pause_start = time.perf_counter()
            stop = on_checkpoint(GreedyPolicy(modules), now)
            paused += time.perf_counter() - pause_start
            next_checkpoint = now + args.checkpoint_every_s
            if stop:
                break
    return TrainResult(elapsed(), robot_steps, schedule_opened_s)


def time_to_quality(
    seed: int, budget_s: float, args: Args | None = None
) -> tuple[float | None, TrainResult]:
    """Train one seed until quality or the budget; the training seconds to quality (or None).

    Every checkpoint is scored greedily on the held-out episodes against random and
    the oracle, and printed.
    """
    env_config = TASK.env_config_dict()
    eval_seeds = episode_seeds(None, EPISODES)  # held out: training never uses these seeds
    reached: list[float] = []

    def evaluate(policy: GreedyPolicy, elapsed_s: float) -> bool:
        comparison = compare(TASK, env_config, policy, eval_seeds)
        success = comparison.policies["trained"].metrics["success_rate"]
        print(
            f"  seed {seed}  {elapsed_s:5.1f} s  "
            f"score {comparison.score:6.3f}  success {success:.3f}"
        )
        if comparison.score >= SCORE and success >= SUCCESS:
            reached.append(elapsed_s)
        return bool(reached)

    result = train(seed, budget_s, evaluate, args)
    return (reached[0] if reached else None), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training runs, seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per seed")
    cli = parser.parse_args()
    print(f"hyperparameters: {Args()}")
    times, rates = [], []
    for seed in range(cli.seeds):
        reached, result = time_to_quality(seed, cli.budget)
        rates.append(result.robot_steps / result.seconds)
        when = f"{reached:.1f} s" if reached is not None else f"not within {cli.budget:.0f} s"
        opened = result.schedule_opened_s
        print(
            f"seed {seed}: quality at {when}, {rates[-1]:,.0f} robot-steps/s, high level "
            f"released {'never' if opened is None else f'at {opened:.1f} s'}"
        )
        if reached is not None:
            times.append(reached)
    print(f"robot-steps/s, {cli.seeds} seeds: {interval(rates, ',.0f')} (mean ± 95 % interval)")
    if not times:
        print(f"no seed reached quality within {cli.budget:.0f} s")
        return
    print(
        f"time to quality, the {len(times)} of {cli.seeds} seeds that reached it: "
        f"{interval(times)} s (mean ± 95 % interval; min {min(times):.1f}, max {max(times):.1f})"
    )


if __name__ == "__main__":
    main()
