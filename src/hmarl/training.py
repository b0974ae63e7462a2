"""Training, top to bottom: settings, a plan, the RLlib config, then a run through Tune or directly.

Read :class:`TrainConfig` for every setting, :func:`plan` for what is checked
before anything starts (the task, its env config, the protocol of its env, the
output folder), :func:`build_config` for the whole RLlib setup in RLlib's own
order (environment → env_runners → training → rl_module → multi_agent), and
:func:`train` for what a run does: start (or join) Ray, train until the stop
condition, checkpoint, and return the final checkpoint's path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hmarl.checkpoints import read_marker
from hmarl.evaluation import EVAL_SEED_BASE
from hmarl.runs import RECORD_FILE, RunRecord, find_run
from hmarl.settings import check_types
from hmarl.task import HMARL_SETTINGS, Task, TaskError

RESULT_FILE = "result.json"
"""One JSON line per iteration, Tune's format, in every run folder (Tune or not)."""
LOG_FILE = "train.log"
"""Ray's and RLlib's own messages during a run, kept off the terminal."""
BATCHED_ENVS, STOCK_ENVS = 256, 16
"""Default envs per env runner: the batched sampler steps arrays, RLlib's steps objects."""
MIN_FREE_BYTES = 50 * 2**20
"""A run folder on a disk with less room than this is refused before training."""
RESUME_MIN_SECONDS = 15.0
"""The least rest of a time budget a run resumes for: Ray's start-up, one iteration and
the wrap-up take about that on two cores (benchmarks/startup.py)."""


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults are tuned for two CPU cores."""

    task: str | None = None
    """The task: a built-in or installed task's name, or module:attribute (default
    chicken_yard; on --resume, the run's task)."""
    env: dict[str, Any] = field(default_factory=dict)
    """The task's env settings (the ``[env]`` table of a TOML file); the rest default."""
    out: Path | None = None
    """Run folder for checkpoints, logs and TensorBoard files (default ``runs/<task>``)."""
    stop_iters: int | None = None
    """Stop after this many training iterations."""
    stop_timesteps: int | None = None
    """Stop once this many env steps are sampled: a run length independent of the machine."""
    time_budget: float | None = None
    """Wall-clock seconds for the whole command; training stops in time to checkpoint."""
    checkpoint_every: int = 5
    """Iterations between checkpoints (and one at the end)."""
    keep_checkpoints: int = 10
    """How many of the checkpoints it writes a run keeps, the newest (0: every one).
    Tune holds each kept checkpoint's results in memory: keeping all grows a long run."""
    seed: int = 0
    """Seed for RLlib (module weights, env runners' env seeds), below 1,000,000."""
    use_tune: bool = True
    """Run through Ray Tune (checkpoint management, TensorBoard, resume); else directly."""
    resume: bool = False
    """Continue the run in ``out`` from its last complete checkpoint."""
    address: str | None = None
    """Ray cluster to join (``ray start --head`` address); None starts a local Ray."""
    num_env_runners: int = 0
    """Remote sampling processes; 0 samples in the training process (best on 2 cores)."""
    torch_threads: int | None = None
    """Threads torch uses in the training process (its learner, and its sampler when no
    env runner is remote; a remote runner uses one). Default: every core for a
    ``time_budget`` run on a local Ray, else 1 (see :func:`torch_threads_of`)."""
    num_envs_per_env_runner: int | None = None
    """Envs stepped together per env runner, so one forward pass serves them all
    (default: 256 with the batched sampler, whose envs are arrays; 16 with RLlib's)."""
    train_batch_size: int = 2048
    """Environment steps sampled per iteration."""
    minibatch_size: int = 2048
    """PPO minibatch size, in agent steps of one policy."""
    num_epochs: int = 4
    """PPO passes over each policy's samples per iteration."""
    lr: float = 1e-3
    """Adam learning rate of every policy (a task may set its own per policy)."""
    gamma: float = 0.99
    """Discount per env step (per decision with ``per-decision`` discounting)."""
    lambda_: float = 0.95
    """GAE lambda."""
    entropy_coeff: float = 0.003
    """Entropy bonus."""
    anneal_lr: bool = False
    """Every learning rate falls linearly to zero as the run nears its stop (its time
    budget, env steps or iterations, whichever is nearest), as CleanRL's
    ``--anneal-lr``: the last updates refine the policy instead of jolting it with no
    time left to recover."""
    vf_clip_param: float = 10.0
    """RLlib's clamp on each row's squared value error (its default): the value's gradient
    is zero wherever the error exceeds its square root. Raise it for returns of tens."""
    hidden_sizes: list[int] | None = None
    """Hidden layer sizes of every policy's networks (None: each module's own default)."""
    modules: Literal["task", "default"] = "task"
    """"task": the task's RL modules where it declares them; "default": RLlib's default
    MLPs on flattened observations everywhere, for comparison."""
    critic: Literal["local", "central"] | None = None
    """Every policy's value reads its observation ("local") or also the env's global
    state ("central", MAPPO-style); default: each policy's own (the task's ppo
    setting, else local)."""
    memory: Literal["none", "lstm"] | None = None
    """"lstm": every policy on RLlib's default module gets an LSTM after its MLP (memory
    across its agent's decisions, see hmarl.sequences); "none": none gets one; default:
    each policy's own (the task's ppo setting, else none)."""
    max_seq_len: int | None = None
    """The longest sequence of an agent's decisions the learner trains a module with memory
    on (longer ones are cut, the state carried); default: each policy's own (the task's
    ppo setting, else 20, RLlib's)."""
    schedule_threshold: float | None = None
    """Override the task's schedule threshold (0: no policy is held back)."""
    schedule_timeout: int | None = 2_000_000
    """Env steps after which a schedule still holding a policy back is reported."""
    discounting: Literal["smdp", "per-decision"] | None = None
    """A decision lasting k env steps is discounted by gamma**k ("smdp") or once
    ("per-decision", RLlib's way); default: the task's choice."""
    sampler: Literal["auto", "batched", "rllib"] = "auto"
    """"batched": hmarl's sampler on the task's batched env; "rllib": RLlib's env runner
    on the task's env; "auto": batched when the task declares a batched env."""

    def __post_init__(self) -> None:
        if isinstance(self.out, str):
            self.out = Path(self.out)
        check_types(self)
        for name in ("checkpoint_every", "train_batch_size", "minibatch_size", "num_epochs"):
            _require(getattr(self, name) >= 1, name, "must be at least 1", getattr(self, name))
        for name in (
            "stop_iters",
            "stop_timesteps",
            "schedule_timeout",
            "num_envs_per_env_runner",
            "max_seq_len",
            "torch_threads",
        ):
            value = getattr(self, name)
            _require(value is None or value >= 1, name, "must be at least 1", value)
        for name in ("num_env_runners", "keep_checkpoints"):
            _require(getattr(self, name) >= 0, name, "must not be negative", getattr(self, name))
        _require(0 <= self.seed < 1_000_000, "seed", "must be in [0, 1000000)", self.seed)
        _require(
            self.time_budget is None or self.time_budget > 0,
            "time_budget",
            "must be positive seconds",
            self.time_budget,
        )
        _require(
            self.minibatch_size <= self.train_batch_size,
            "minibatch_size",
            f"must not exceed train_batch_size ({self.train_batch_size})",
            self.minibatch_size,
        )
        _require(0 < self.lr <= 1, "lr", "must be in (0, 1]", self.lr)
        _require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]", self.gamma)
        _require(0 <= self.lambda_ <= 1, "lambda_", "must be in [0, 1]", self.lambda_)
        _require(
            self.entropy_coeff >= 0, "entropy_coeff", "must not be negative", self.entropy_coeff
        )
        _require(self.vf_clip_param > 0, "vf_clip_param", "must be positive", self.vf_clip_param)
        if self.hidden_sizes is not None:
            _require(
                len(self.hidden_sizes) > 0 and min(self.hidden_sizes) >= 1,
                "hidden_sizes",
                "must be a non-empty list of positive sizes",
                self.hidden_sizes,
            )
        _require(
            self.schedule_threshold is None or math.isfinite(self.schedule_threshold),
            "schedule_threshold",
            "must be a finite number",
            self.schedule_threshold,
        )

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Read a TOML file: top-level keys are settings, an ``[env]`` table the task's env.

        ``overrides`` (the command line's) win; an ``env`` override is merged into
        the file's table key by key.
        """
        return cls.from_settings(read_toml(path), overrides, source=path)

    @classmethod
    def from_settings(
        cls, values: dict[str, Any], overrides: dict[str, Any], source: Path | None = None
    ) -> TrainConfig:
        """The config of ``values`` (as :func:`read_toml` gives them) under ``overrides``,
        whose ``env`` is merged into ``values``' key by key; errors name ``source``."""
        env = {**values.get("env", {}), **overrides.get("env", {})}
        rest = {k: v for k, v in values.items() if k != "env"}
        rest.update({k: v for k, v in overrides.items() if k != "env"})
        try:
            return cls(env=env, **rest)
        except ValueError as err:
            if source is None:
                raise
            raise ValueError(f"config file {source}: {err}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """The training settings in a TOML file (:meth:`TrainConfig.from_toml`), checked to be
    :class:`TrainConfig`'s fields, the task's env settings in an ``[env]`` table.

    Raises ValueError naming the file and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a folder, not a TOML file")
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} cannot be read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {path} is not valid TOML: {err}") from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        tables = [k for k in unknown if isinstance(values[k], dict)]
        hint = " (the task's env settings go in an [env] table)" if tables else ""
        raise ValueError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}{hint}; "
            f"known: {', '.join(sorted(known))}"
        )
    if not isinstance(values.get("env", {}), dict):
        raise ValueError(f"config file {path}: env must be a table ([env])")
    return values


def _require(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{name} {rule}, got {value!r}")


# -- the plan: everything checked before Ray starts ------------------------------


@dataclass
class Plan:
    """A checked training run: what to train, where, and where from."""

    cfg: TrainConfig
    task: Task
    task_ref: str
    env_config: dict[str, Any]
    out: Path
    policies: dict[str, tuple[Any, Any]] | None
    """Each policy's (observation, action) space (None until the env is checked)."""
    state_space: Any = None
    """The env's global state space, if it declares one (see hmarl.global_state)."""
    start_from: Path | None = None
    """The checkpoint a resumed run continues from."""
    start_iteration: int = 0
    skipped: list[str] = field(default_factory=list)
    """Newer checkpoints a resumed run could not continue from, each with why."""
    budget_used: float = 0.0
    """Seconds of the run's time budget used before this command (a resumed run's)."""

    @property
    def time_left(self) -> float | None:
        """Seconds of the time budget this command may use (None: no budget)."""
        budget = self.cfg.time_budget
        return None if budget is None else budget - self.budget_used


STOPS = ("stop_iters", "stop_timesteps", "time_budget")
"""The settings that say when a run stops; training ends at whichever comes first."""


def with_task_training(
    cfg: TrainConfig, task: Task, told: set[str]
) -> tuple[TrainConfig, dict[str, Any]]:
    """``cfg`` with the task's own training settings (``Task.training``) where the user
    set none (``told``: the settings a flag or the config file gave), and those applied.

    Raises ValueError when the result is not a valid config (say, the task's minibatch
    is larger than a train batch the user gave).
    """
    own = {k: v for k, v in task.training.items() if k not in told}
    return dataclasses.replace(cfg, **own), own


def plan(cfg: TrainConfig, check_env: bool = True, default_stop_iters: int | None = None) -> Plan:
    """Check everything a run needs before Ray starts; write nothing.

    Raises ValueError (TaskError among them) with a message naming the problem.
    ``check_env=False`` leaves the env's checks (see :func:`preflight`) to
    :func:`train`. A resumed run without a stop of its own continues toward the
    run's (the rest of its time budget, or its iterations or env steps); a run with
    no stop at all gets ``default_stop_iters``. ``--resume`` without ``out``
    continues ``runs/<task>``.
    """
    from hmarl.registry import DEFAULT_TASK, load_task

    if cfg.resume and cfg.out is None:
        cfg.out = Path("runs") / load_task(cfg.task or DEFAULT_TASK).name
    run = find_run(cfg.out) if cfg.resume else None
    if cfg.resume and (run is None or run[0] != Path(cfg.out).resolve()):
        raise ValueError(f"nothing to resume in {cfg.out}: it holds no {RECORD_FILE}")
    record = run[1] if run else None
    task_ref = cfg.task or (record.task_ref if record else DEFAULT_TASK)
    task = load_task(task_ref)
    if record is not None:
        if task.name != record.task:
            raise ValueError(
                f"{cfg.out} trained task {record.task}; it cannot resume as {task.name}"
            )
        changed = {k: v for k, v in cfg.env.items() if record.env_config.get(k) != v}
        if changed:
            raise ValueError(
                f"a resumed run keeps its env settings; {', '.join(sorted(changed))} differ "
                f"from the run's ({cfg.out / RECORD_FILE})"
            )
    given_stop = any(getattr(cfg, name) is not None for name in STOPS)
    if record is not None and not given_stop:
        for name in STOPS:
            setattr(cfg, name, record.stop.get(name))
    if not any(getattr(cfg, name) is not None for name in STOPS):
        cfg.stop_iters = default_stop_iters
    env_config = task.env_config_dict(record.env_config if record else cfg.env)
    out = Path(cfg.out) if cfg.out is not None else Path("runs") / task.name
    result = Plan(cfg, task, task_ref, env_config, out, policies=None)
    if cfg.resume:
        _plan_resume(result, continues_budget=not given_stop)
    else:
        _check_new_run_folder(out)
    if check_env:  # last: the folder's answers are quicker
        check_env_of(result)
    return result


def check_env_of(p: Plan) -> None:
    """Pre-flight the plan's env, and fill in its policies' spaces and its state space.

    Also checks what the run asks of the env: a policy with a centralised critic needs
    the env's global state; and of the modules: an LSTM needs RLlib's default module.
    """
    p.policies, p.state_space = preflight(p.task, p.env_config)
    check_memory(p)
    central = sorted(policy for policy in p.policies if critic_of(p, policy) == "central")
    if central and p.state_space is None:
        raise TaskError(
            f"task {p.task.name}: {', '.join(central)} has a centralised critic, but its env "
            "declares no global state (a state_space and a state() method)"
        )


def critic_of(p: Plan, policy: str) -> str:
    """A policy's critic: the run's --critic, else the task's ppo setting, else local."""
    return p.cfg.critic or p.task.ppo.get(policy, {}).get("critic", "local")


DEFAULT_MAX_SEQ_LEN = 20
"""RLlib's default ``max_seq_len`` (DefaultModelConfig, 2.60.0)."""


def memory_of(p: Plan, policy: str) -> str:
    """A policy's memory on RLlib's default module: the run's --memory, else the task's
    ppo setting, else none."""
    return p.cfg.memory or p.task.ppo.get(policy, {}).get("memory", "none")


def max_seq_len_of(p: Plan, policy: str) -> int | None:
    """A policy's max_seq_len: the run's, else the task's ppo setting (None: not given)."""
    return p.cfg.max_seq_len or p.task.ppo.get(policy, {}).get("max_seq_len")


def stop_of(cfg: TrainConfig) -> dict[str, Any]:
    """The run's stop, as its record keeps it."""
    return {name: getattr(cfg, name) for name in STOPS if getattr(cfg, name) is not None}


def describe_stop(cfg: TrainConfig, time_left: float | None = None) -> str:
    """When a run stops, for people: "after 30 iterations or 120 s (...), whichever comes first"."""
    parts = []
    if cfg.stop_iters is not None:
        parts.append(f"{cfg.stop_iters} iteration{'s' if cfg.stop_iters != 1 else ''}")
    if cfg.stop_timesteps is not None:
        parts.append(f"{cfg.stop_timesteps:,} env steps")
    if cfg.time_budget is not None:
        left = cfg.time_budget if time_left is None else time_left
        parts.append(
            f"{left:.0f} s (the time budget, closing evaluation included)"
            if time_left is None or time_left == cfg.time_budget
            else f"{left:.0f} s (the rest of its {cfg.time_budget:.0f}-second time budget)"
        )
    if not parts:
        return "never (no stop given)"
    text = "after " + " or ".join(parts)
    return text + (", whichever comes first" if len(parts) > 1 else "")


def preflight(
    task: Task, env_config: dict[str, Any], episodes: int = 2, step_budget: int | None = 2000
) -> tuple[dict[str, tuple[Any, Any]], Any]:
    """Build the task's env and play a little of it under every check training will meet.

    hmarl's conformance checks (:func:`hmarl.conformance.check_env`), then what RLlib
    enforces once training runs: whole episodes replayed through RLlib's own
    ``MultiAgentEpisode``, and RLlib's env checker, on the env as RLlib's runners
    build it (see :mod:`hmarl.task_env`). Well under a second for the built-in tasks.

    Returns each policy's spaces and the env's global state space (None without one).
    A ``make_env`` that fails or returns the wrong kind of object, a ``policy_of``
    that fails for some agent, a space that cannot be used (an action mask that does
    not fit its action), and an env that breaks the protocol each raise TaskError
    naming the problem (the agent, the step and the rule).
    """
    from hmarl.action_masks import observation_key
    from hmarl.conformance import check_env, check_rllib_env_checker, check_rllib_episodes
    from hmarl.global_state import StateError, state_space_of
    from hmarl.task_env import EnvFault, TaskEnv, make_task_env

    env = make_task_env(task, env_config)
    policies = task.policy_spaces(env)
    as_rllib_runs_it = TaskEnv(task)
    seed = EVAL_SEED_BASE - 1
    try:
        state_space = state_space_of(env)
    except StateError as err:
        raise TaskError(f"task {task.name}: {err}") from None
    # RLlib's env checker steps actions sampled without their masks, which an env that
    # refuses a masked action (as real systems do) fails; hmarl's checks cover it.
    masked = any(observation_key(space) is not None for space, _ in policies.values())
    try:
        check_env(env, seed=seed, episodes=episodes, step_budget=step_budget)
        check_rllib_episodes(
            as_rllib_runs_it(env_config), task.policy_id, seed, episodes, step_budget
        )
        if not masked:
            check_rllib_env_checker(as_rllib_runs_it(env_config))
    except AssertionError as err:
        raise TaskError(f"task {task.name}: its env breaks the protocol: {err}") from None
    except (EnvFault, TaskError) as err:
        raise TaskError(str(err)) from None
    except Exception as err:
        raise TaskError(
            f"task {task.name}: its env failed while checked: {type(err).__name__}: {err}"
        ) from None
    return policies, state_space


def _check_new_run_folder(out: Path) -> None:
    from hmarl.checkpoints import find_checkpoints

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and ((out / RECORD_FILE).exists() or find_checkpoints(out)):
        raise ValueError(
            f"{out} already holds a run: continue it with `hmarl train --resume --out {out}`, "
            "or choose another --out"
        )
    existing = next(p for p in [out, *out.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the run folder {out}: {existing} is not writable")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"cannot write the run folder {out}: only {free // 2**20} MiB free on its disk"
        )


def _plan_resume(result: Plan, continues_budget: bool) -> None:
    """The checkpoint to continue from, and what is left to do; nothing to do is an error.

    The newest checkpoint whose files match their recorded hashes is taken; newer
    ones that do not are skipped and named (see :mod:`hmarl.checkpoints`).
    """
    from hmarl.checkpoints import checkpoint_problem, find_checkpoints, newer_incomplete

    found = find_checkpoints(result.out)
    problems = []
    for checkpoint in reversed(found):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            result.start_from = checkpoint
            break
        problems.append(f"{checkpoint}: {problem}")
    if result.start_from is None:  # stopped before its first checkpoint was whole: starts over
        result.skipped = problems
        return
    result.skipped = sorted({*newer_incomplete(result.out, result.start_from), *problems})
    marker = read_marker(result.start_from)
    result.start_iteration = marker["iteration"]
    cfg, again = result.cfg, "give a later stop (--stop-iters, --stop-timesteps, --time-budget)"
    if cfg.stop_iters is not None and cfg.stop_iters <= result.start_iteration:
        raise ValueError(
            f"nothing to do: {result.out} is at iteration {result.start_iteration} "
            f"and its stop is --stop-iters {cfg.stop_iters}; {again}"
        )
    steps = marker.get("env_steps", 0)
    if cfg.stop_timesteps is not None and cfg.stop_timesteps <= steps:
        raise ValueError(
            f"nothing to do: {result.out} has sampled {steps:,} env steps "
            f"and its stop is --stop-timesteps {cfg.stop_timesteps}; {again}"
        )
    if continues_budget and cfg.time_budget is not None:
        result.budget_used = float(marker.get("budget_used", 0.0))
        if result.time_left < RESUME_MIN_SECONDS:
            raise ValueError(
                f"nothing to do: {result.out} used {result.budget_used:.0f} s of its "
                f"{cfg.time_budget:.0f}-second time budget; {again}"
            )


# -- the RLlib config -------------------------------------------------------------


def env_name(task: Task) -> str:
    """The name the task's env creator is registered under with RLlib."""
    return f"hmarl:{task.name}"


class PolicyMapping:
    """RLlib's ``policy_mapping_fn``: the task's ``policy_of``."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def __call__(self, agent_id: str, *args: Any, **kwargs: Any) -> str:
        return self.task.policy_of(agent_id)


def build_config(
    p: Plan, budget_clock: float | None = None, deadline: Deadline | None = None
) -> Any:
    """The whole RLlib setup, in RLlib's order.

    ``budget_clock`` (a ``time.time()``) is when the run's time budget began, as if
    used without a break: checkpoints record the seconds used since (see :func:`train`).
    ``deadline`` is when training stops, which ``anneal_lr`` anneals toward.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.tune.registry import register_env

    from hmarl.algorithm import HierarchicalPPOConfig, LrAnnealing
    from hmarl.metrics import EpisodeMetrics, metric_windows
    from hmarl.task_env import TaskEnv

    cfg, task = p.cfg, p.task
    specs, flat_policies = module_specs(p)
    central = tuple(policy for policy in p.policies if critic_of(p, policy) == "central")
    sampler = "batched" if use_batched_sampler(p) else "rllib"
    register_env(env_name(task), TaskEnv(task, with_state=bool(central)))
    config = (
        HierarchicalPPOConfig()
        # RLlib's env checker (2.60.0: check_multiagent_environments, at every env
        # runner's start) steps actions sampled without their action masks, so an env
        # that refuses a masked action, as real systems do, fails it. hmarl's pre-flight
        # has already checked the env, masks respected (see preflight).
        .environment(env_name(task), env_config=p.env_config, disable_env_checking=True)
        .env_runners(
            num_env_runners=cfg.num_env_runners,
            num_envs_per_env_runner=cfg.num_envs_per_env_runner
            or (BATCHED_ENVS if sampler == "batched" else STOCK_ENVS),
            batch_mode="truncate_episodes",
            # RLlib 2.60's multi-agent env runner converts every finished episode to
            # NumPy again on every env step; with short episodes that grows
            # quadratically and halves sampling speed. Lists are fine for PPO.
            episodes_to_numpy=False,
        )
        .training(
            lr=cfg.lr,
            gamma=cfg.gamma,
            lambda_=cfg.lambda_,
            entropy_coeff=cfg.entropy_coeff,
            vf_clip_param=cfg.vf_clip_param,
            train_batch_size_per_learner=cfg.train_batch_size,
            minibatch_size=cfg.minibatch_size,
            num_epochs=cfg.num_epochs,
        )
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs))
        .multi_agent(
            # A list, not a set: RLlib builds the modules in this order, each drawing
            # its first weights from torch's generator (a set's order follows the
            # process's string hash seed).
            policies=list(p.policies),
            policy_mapping_fn=PolicyMapping(task),
            algorithm_config_overrides_per_module={
                policy: PPOConfig.overrides(
                    **{k: v for k, v in settings.items() if k not in HMARL_SETTINGS}
                )
                for policy, settings in task.ppo.items()
            },
        )
        .callbacks(
            on_episode_end=EpisodeMetrics(task.metrics, task.policy_of, metric_windows(schedule(p)))
        )
        .debugging(seed=cfg.seed)
        .hierarchy(
            schedule=schedule(p),
            schedule_timeout=cfg.schedule_timeout,
            discounting=cfg.discounting or task.discounting,
            task=task,
            sampler=sampler,
            flatten_policies=tuple(flat_policies),
            central_policies=central,
            run_folder=str(p.out.resolve()),
            budget_clock=budget_clock,
            torch_threads=torch_threads_of(cfg),
            lr_annealing=None
            if not cfg.anneal_lr
            else LrAnnealing(
                start=budget_clock,
                end=None if deadline is None else deadline.training_end(),
                env_steps=cfg.stop_timesteps,
                iterations=cfg.stop_iters,
            ),
        )
    )
    if flat_policies and sampler == "rllib":
        from hmarl.task_env import make_task_env

        env = make_task_env(task, p.env_config)
        agents = [a for a in env.possible_agents if task.policy_of(a) in flat_policies]
        config.env_runners(env_to_module_connector=functools.partial(_flatten, agents))
    if p.start_from is not None:
        # Restored inside the algorithm's own setup, so it works the same in this
        # process and in a Tune trial (the callback travels with the config).
        config.callbacks(on_algorithm_init=functools.partial(_restore, str(p.start_from.resolve())))
    return config


def use_batched_sampler(p: Plan) -> bool:
    """Whether the run samples with hmarl's batched sampler (see TrainConfig.sampler)."""
    if p.cfg.sampler == "batched" and p.task.make_batched_env is None:
        raise TaskError(f"task {p.task.name} declares no batched env; use --sampler rllib")
    return p.cfg.sampler == "batched" or (
        p.cfg.sampler == "auto" and p.task.make_batched_env is not None
    )


def module_specs(p: Plan) -> tuple[dict[str, Any], set[str]]:
    """The RL module spec of each policy, and the policies whose observations to flatten.

    A policy gets the task's module unless ``--modules default``; otherwise RLlib's
    default MLPs, which need Dict and Tuple observations flattened (RLlib's own
    ``FlattenObservations`` connector, for just those agents), with an LSTM after the
    MLP (as wide as its last layer) where the policy's memory is ``lstm``. A
    centralised critic gets the state's space in its ``model_config`` (RLlib's default
    module becomes :class:`~hmarl.central_critic.CentralCriticModule`), and a policy
    whose observations carry an action mask gets its module wrapped in
    :class:`~hmarl.masked_module.MaskedModule` (which flattens for RLlib's MLPs itself).
    A given ``max_seq_len`` goes into the module's ``model_config``, where RLlib's
    connectors read it (the wrapper's too).
    """
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from hmarl.action_masks import observation_key
    from hmarl.central_critic import CentralCriticModule
    from hmarl.flat_observations import is_flat
    from hmarl.global_state import STATE_SPACE_KEY
    from hmarl.masked_module import MaskedModule, qualname
    from hmarl.sequences import MAX_SEQ_LEN

    cfg = p.cfg
    declared = p.task.module_specs() if cfg.modules == "task" else {}
    specs, flat_policies = {}, set()
    for policy, (obs_space, _) in p.policies.items():
        central = critic_of(p, policy) == "central"
        mask = observation_key(obs_space)
        spec = declared.get(policy)
        length = max_seq_len_of(p, policy)
        if spec is None:
            hidden = cfg.hidden_sizes or [64, 64]
            config = DefaultModelConfig(fcnet_hiddens=hidden)
            if memory_of(p, policy) == "lstm":
                config = DefaultModelConfig(
                    fcnet_hiddens=hidden,
                    use_lstm=True,
                    lstm_cell_size=hidden[-1],
                    max_seq_len=length or DEFAULT_MAX_SEQ_LEN,
                )
            spec = RLModuleSpec(model_config=config)
            if central:
                spec = RLModuleSpec(
                    module_class=CentralCriticModule, model_config=dataclasses.asdict(config)
                )
            if mask is None and not is_flat(obs_space):
                flat_policies.add(policy)
        else:
            own = _plain(spec.model_config)
            if cfg.hidden_sizes is not None:
                own["hidden_sizes"] = cfg.hidden_sizes
            if length is not None:
                own[MAX_SEQ_LEN] = length
            if own != _plain(spec.model_config):
                spec = dataclasses.replace(spec, model_config=own)
        if central:
            config = {**_plain(spec.model_config), STATE_SPACE_KEY: p.state_space}
            spec = dataclasses.replace(spec, model_config=config)
        if mask is not None:
            inner = _plain(spec.model_config)
            module = qualname(spec.module_class or DefaultPPOTorchRLModule)
            outer = {"module": module, "model_config": inner}
            # RLlib's connectors read max_seq_len off the outer module; RLlib's default
            # config always holds one, meant only with use_lstm.
            if MAX_SEQ_LEN in inner and inner.get("use_lstm") is not False:
                outer[MAX_SEQ_LEN] = inner[MAX_SEQ_LEN]
            spec = RLModuleSpec(module_class=MaskedModule, model_config=outer)
        specs[policy] = spec
    return specs, flat_policies


def _plain(model_config: Any) -> dict[str, Any]:
    """A module's model_config as a plain dict (RLlib's DefaultModelConfig is a dataclass)."""
    if dataclasses.is_dataclass(model_config):
        return dataclasses.asdict(model_config)
    return dict(model_config or {})


def check_memory(p: Plan) -> None:
    """An LSTM is RLlib's default module's: a policy with the task's own module has none."""
    declared = p.task.module_specs() if p.cfg.modules == "task" else {}
    if p.cfg.memory == "lstm" and all(policy in declared for policy in p.policies):
        raise TaskError(
            f"--memory lstm gives RLlib's default modules an LSTM, but every policy of task "
            f"{p.task.name} has the task's own module; add --modules default"
        )
    own = sorted(
        policy
        for policy in p.policies
        if policy in declared and p.task.ppo.get(policy, {}).get("memory", "none") != "none"
    )
    if own and p.cfg.memory is None:
        raise TaskError(
            f"task {p.task.name}: {', '.join(own)} declares memory lstm and a module of its "
            "own; an LSTM is for RLlib's default module (a module of its own has memory "
            "when its get_initial_state is not empty)"
        )


def _flatten(agents: list[str], env: Any, spaces: Any, device: Any) -> Any:
    from ray.rllib.connectors.env_to_module import FlattenObservations

    return FlattenObservations(multi_agent=True, agent_ids=agents)


def schedule(p: Plan) -> Any:
    """The task's schedule, with the run's threshold if it sets one (0: none)."""
    declared = p.task.schedule
    if declared is None or p.cfg.schedule_threshold is None:
        return declared
    if p.cfg.schedule_threshold <= 0:
        return None
    return dataclasses.replace(declared, threshold=p.cfg.schedule_threshold)


def _restore(checkpoint: str, algorithm: Any, **kwargs: Any) -> None:
    algorithm.restore_from_path(checkpoint)


# -- running ------------------------------------------------------------------------


class Deadline:
    """When to stop: an iteration count, an env-step count, a wall-clock budget, or any mix.

    The budget covers the whole command (a resumed run's: what is left of it), so
    training stops unless one more iteration (as long as the longest recent one)
    and the wrap-up still fit: the final checkpoint and Ray's shutdown
    (``WRAP_UP_SECONDS``), and ``reserve`` seconds for whatever the command does
    after training (the CLI's closing evaluation, as it estimated it).
    """

    WRAP_UP_SECONDS = 4.0

    def __init__(
        self,
        cfg: TrainConfig,
        start: float,
        time_left: float | None = None,
        reserve: float = 0.0,
    ) -> None:
        self.stop_iters = cfg.stop_iters
        self.stop_timesteps = cfg.stop_timesteps
        budget = cfg.time_budget if time_left is None else time_left
        self.end = None if budget is None else start + budget
        self.reserve = reserve
        self._last: float | None = None
        self._recent: deque[float] = deque(maxlen=5)
        self.reached = False
        """Whether training stopped because a condition said so (not by an interrupt)."""

    def done(self, result: dict[str, Any]) -> bool:
        """Call once per finished iteration: should training stop now?"""
        self.reached = self._done(result)
        return self.reached

    def _done(self, result: dict[str, Any]) -> bool:
        now = time.monotonic()
        # Iteration lengths are measured from the first result on: the time before
        # it is mostly Ray's and Tune's start-up, which does not come again.
        if self._last is not None:
            self._recent.append(now - self._last)
        self._last = now
        longest = max(self._recent, default=0.0)
        if self.stop_iters is not None and result["training_iteration"] >= self.stop_iters:
            return True
        steps = result.get("num_env_steps_sampled_lifetime", 0)
        if self.stop_timesteps is not None and steps >= self.stop_timesteps:
            return True
        # Stop unless one more iteration and the wrap-up still fit.
        last = self._last_moment()
        return last is not None and now + longest > last

    def _last_moment(self) -> float | None:
        """When training must have stopped (``time.monotonic()``) to leave the wrap-up
        and the reserve their time; None without a time budget."""
        return None if self.end is None else self.end - self.WRAP_UP_SECONDS - self.reserve

    def training_end(self) -> float | None:
        """:meth:`_last_moment` as a ``time.time()``, which another process can read."""
        last = self._last_moment()
        return None if last is None else time.time() + (last - time.monotonic())


def episodes_that_fit(seconds_per_episode: float, seconds: float, wanted: int) -> int:
    """How many episodes, at most ``wanted``, take no more than ``seconds``."""
    if seconds_per_episode <= 0:
        return wanted
    return max(0, min(wanted, int(seconds / seconds_per_episode)))


def train(
    p: Plan,
    on_result: Callable[[dict], None] | None = None,
    started: float | None = None,
    reserve: float = 0.0,
) -> Path:
    """Run the plan until its stop condition; return the final checkpoint's path.

    ``started`` is when the command began (``time.monotonic()``), which the time
    budget counts from; by default, now. ``reserve`` is the seconds of the budget
    kept for what the caller does after training (see :class:`Deadline`).
    """
    import ray

    from hmarl import __version__

    cfg = p.cfg
    if cfg.stop_iters is None and cfg.stop_timesteps is None and cfg.time_budget is None:
        raise ValueError("give a stop condition: stop_iters, stop_timesteps or time_budget")
    start = time.monotonic() if started is None else started
    new_folder = not p.out.exists()
    p.out.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(cfg, start, p.time_left, reserve)
    # A wall-clock time the checkpoints' markers count the run's budget from: the
    # time used before this command (a resumed run's), then this command's.
    budget_clock = time.time() - (time.monotonic() - start) - p.budget_used
    log = _log_to_file(p.out / LOG_FILE)
    try:
        with _stderr_to(p.out / LOG_FILE), _reaped(local=cfg.address is None):
            _start_ray_checking_env(p, new_folder)
            _record_run(p, __version__)
            try:
                if cfg.use_tune:
                    from hmarl.tuning import train_with_tune as run
                else:
                    run = _train_directly
                config = build_config(p, budget_clock, deadline)
                return run(config, p, deadline, on_result or (lambda r: None))
            finally:
                ray.shutdown()
    finally:
        for name in RAY_LOGGERS:
            logging.getLogger(name).removeHandler(log)
        log.close()


def _record_run(p: Plan, version: str) -> None:
    """Write the run's record: a new run's, or a resumed run's with a stop of its own."""
    stop = stop_of(p.cfg)
    if not p.cfg.resume:
        RunRecord(p.task.name, p.task_ref, p.env_config, version, stop).write(p.out)
        return
    record = RunRecord.read(p.out / RECORD_FILE)
    if record.stop != stop:
        dataclasses.replace(record, stop=stop).write(p.out)


def _start_ray_checking_env(p: Plan, new_folder: bool) -> None:
    """Start Ray while RLlib is imported in a second thread, then check the env.

    Starting Ray mostly waits for its processes and importing RLlib mostly computes,
    so side by side they take the longer of the two instead of the sum (about 2.5 s
    less on two cores, benchmarks/startup.py). An env that fails its check stops Ray
    again and leaves no run folder behind.
    """
    import ray

    importing = threading.Thread(target=_import_rllib, daemon=True)
    importing.start()
    _start_ray(p.cfg)
    importing.join()
    if p.policies is not None:
        return
    try:
        check_env_of(p)
    except ValueError:
        ray.shutdown()
        if new_folder:
            shutil.rmtree(p.out, ignore_errors=True)
        raise


def _import_rllib() -> None:
    import hmarl.algorithm
    import hmarl.task_env  # noqa: F401


@contextlib.contextmanager
def _reaped(local: bool) -> Iterator[None]:
    """A local Ray's processes end with this one, even on kill -9 (see hmarl.reaper)."""
    if not local:
        yield
        return
    from hmarl import reaper

    watching = reaper.start()
    try:
        yield
    finally:
        reaper.stop(watching)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """This process's standard error (the file, not just ``sys.stderr``) into ``path``.

    Ray's core writes some lines there straight from C++ (e.g. about env runner
    actors that can be restarted), and the processes a local Ray starts inherit it:
    they belong in the run's log, not on the user's terminal. The command's own
    messages come after training, to the terminal again.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "a") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


RAY_LOGGERS = ("ray", "ray.rllib")
"""Ray's loggers with handlers of their own (neither passes records up)."""


def torch_threads_of(cfg: TrainConfig) -> int:
    """Torch threads of the run's training process: ``cfg.torch_threads``, else one per
    core it may use for a run with a time budget on a local Ray, else 1.

    A time budget asks for the most training in the seconds given, and its result does
    not repeat anyway (how many iterations fit depends on the machine), so it gets the
    cores: PPO samples, then learns, and while it learns the other core is idle. With
    two threads LBF's minibatches of 4,096 rows (64-64 MLPs, policy and value) trained
    in 5.9 ms a step against 9.0 ms with one, and ``Foraging-10x10-3p-3f-v3`` sampled
    about 20,000 env steps a second against 12,000-15,000 (2-core machine, alone,
    2026-12-05). A run stopped by env steps or iterations keeps one thread, so that its
    seed gives the same weights on any machine (threads change how sums are split), and
    so that two such runs side by side, as ``benchmarks/marl_suite.py`` runs them, do not
    each wait on the other's core: with the second core busy a second thread costs far
    more than it saves (1 ms against 21 ms for a 64-64 MLP's pass over 1,000 rows).
    """
    if cfg.torch_threads is not None:
        return cfg.torch_threads
    if cfg.time_budget is not None and cfg.address is None:
        return usable_cores()
    return 1


def usable_cores() -> int:
    """The cores this process may run on (fewer than the machine's when pinned with
    ``taskset`` or a cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpus_needed(cfg: TrainConfig) -> int:
    """Ray CPUs the run asks for: the training process, and one per remote env runner."""
    return 1 + cfg.num_env_runners


def _start_ray(cfg: TrainConfig) -> None:
    """Start a local Ray, or join the cluster at ``cfg.address``, with CPUs for the run.

    Ray counts CPUs as scheduling tokens. A local Ray gets at least as many as the
    run asks for, so ``--num-env-runners 2`` works on two cores (the runners share
    them) instead of waiting forever for a third CPU. A cluster must have them.
    """
    import ray

    if cfg.address:
        ray.init(address=cfg.address, log_to_driver=False, logging_level=logging.WARNING)
        available = int(ray.cluster_resources().get("CPU", 0))
        if available < cpus_needed(cfg):
            ray.shutdown()
            raise ValueError(
                f"the cluster at {cfg.address} has {available} CPUs; the run needs "
                f"{cpus_needed(cfg)} (one, plus one per env runner): lower --num-env-runners"
            )
        return
    # address="local" starts a fresh Ray even if a `ray start` cluster is around.
    ray.init(
        address="local",
        num_cpus=max(os.cpu_count() or 1, cpus_needed(cfg)),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def _log_to_file(path: Path) -> logging.Handler:
    """Ray's and RLlib's messages go to the run's log file (the CLI keeps them off the screen)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    for name in RAY_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


def _train_directly(config: Any, p: Plan, deadline: Deadline, on_result: Callable) -> Path:
    """The algorithm in this process: the tutorial's ``RUN_WITH_TUNE = False``."""
    from hmarl.algorithm import HierarchicalPPO
    from hmarl.checkpoints import save_atomically
    from hmarl.run_log import RunLog

    algo = HierarchicalPPO(config=config)
    log = RunLog(p.out)
    # Python raises KeyboardInterrupt wherever the main thread is when Ctrl-C comes,
    # and one raised inside a finalizer (torch's, Ray's ObjectRefs') is printed and
    # dropped. So Ctrl-C is also noted, and honoured at the end of the iteration.
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()  # where signals go
    previous = signal.signal(signal.SIGINT, on_interrupt) if main else None
    try:
        last_saved = None
        saved: list[Path] = []
        while True:
            result = algo.train()
            iteration = result["training_iteration"]
            log.write(result)
            on_result(result)
            stop = deadline.done(result)
            if stop or iteration % p.cfg.checkpoint_every == 0:
                final = p.out / f"checkpoint_{iteration:06d}"
                last_saved = save_atomically(
                    lambda tmp: algo.save_checkpoint(str(tmp.resolve())), final
                )
                saved.append(last_saved)
                while p.cfg.keep_checkpoints and len(saved) > p.cfg.keep_checkpoints:
                    shutil.rmtree(saved.pop(0), ignore_errors=True)
            if interrupted.is_set():
                raise KeyboardInterrupt
            if stop:
                return last_saved
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        log.close()
        algo.stop()
