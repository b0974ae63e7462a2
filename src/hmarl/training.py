"""Training, top to bottom: settings, the RLlib config, then a run through Tune or directly.

Read :func:`build_config` to see the whole RLlib setup in RLlib's own order
(environment → env_runners → training → rl_module → multi_agent), and
:func:`train` for what a run does: start (or join) Ray, train until the stop
condition, checkpoint, and return the final checkpoint's path.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from hmarl.algorithm import (
    HIGH_LEVEL_POLICY,
    LOW_LEVEL_POLICY,
    HierarchicalPPO,
    HierarchicalPPOConfig,
)
from hmarl.checkpoints import CheckpointError, find_checkpoints, load_policy
from hmarl.simulation import YardConfig

RESULT_FILE = "result.json"
"""One JSON line per iteration, Tune's format, in every run folder (Tune or not)."""


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults are tuned for two CPU cores."""

    yard: YardConfig = field(default_factory=YardConfig)
    """The chicken yard to train on."""
    name: str = "chicken_yard"
    """Run name; the default output folder is ``runs/<name>``."""
    out: Path | None = None
    """Output folder for checkpoints, logs and TensorBoard files (default ``runs/<name>``)."""
    stop_iters: int | None = None
    """Stop after this many training iterations (None: no limit)."""
    time_budget: float | None = None
    """Wall-clock seconds for the whole command; training stops in time to checkpoint."""
    checkpoint_every: int = 5
    """Iterations between checkpoints (and one at the end)."""
    seed: int = 0
    """Seed for RLlib (module weights, env runners' env seeds)."""
    use_tune: bool = True
    """Run through Ray Tune (checkpoint management, TensorBoard, resume); else directly."""
    resume: bool = False
    """Continue the run in ``out`` from its last checkpoint."""
    address: str | None = None
    """Ray cluster to join (``ray start --head`` address); None starts a local Ray."""
    num_env_runners: int = 0
    """Remote sampling processes; 0 samples in the training process (best on 2 cores)."""
    num_envs_per_env_runner: int = 16
    """Yards stepped together per env runner, so one forward pass serves several."""
    train_batch_size: int = 4000
    """Environment steps sampled per iteration."""
    minibatch_size: int = 1000
    """PPO minibatch size (in agent steps per module)."""
    num_epochs: int = 4
    """PPO passes over each batch."""
    lr: float = 1e-3
    """Adam learning rate for both levels."""
    gamma: float = 0.99
    """Discount per agent step."""
    lambda_: float = 0.95
    """GAE lambda."""
    entropy_coeff: float = 0.003
    """Entropy bonus; small, the levels have few actions."""
    high_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the high level's shared chicken scorer."""
    low_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the low level's networks."""
    high_level_start_success: float = 0.9
    """Low-level success rate at which the high level starts to train (see algorithm.py)."""
    modules: str = "custom"
    """"custom": our RL modules; "default": RLlib's MLPs on flattened observations."""

    def __post_init__(self) -> None:
        for name in ("checkpoint_every", "train_batch_size", "minibatch_size", "num_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_env_runners < 0:
            raise ValueError(f"num_env_runners must not be negative, got {self.num_env_runners}")
        if self.num_envs_per_env_runner < 1:
            raise ValueError(
                f"num_envs_per_env_runner must be at least 1, got {self.num_envs_per_env_runner}"
            )
        if self.stop_iters is not None and self.stop_iters < 1:
            raise ValueError(f"stop_iters must be at least 1, got {self.stop_iters}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be positive seconds, got {self.time_budget}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(
                f"minibatch_size ({self.minibatch_size}) must not exceed "
                f"train_batch_size ({self.train_batch_size})"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.high_level_start_success <= 1.0:
            raise ValueError(
                f"high_level_start_success must be in [0, 1], got {self.high_level_start_success}"
            )
        if self.modules not in ("custom", "default"):
            raise ValueError(f"modules must be 'custom' or 'default', got {self.modules!r}")
        if self.out is None:
            self.out = Path("runs") / self.name
        self.out = Path(self.out)

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Read a TOML file: top-level keys are fields, a ``[yard]`` table the yard."""
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path} is not valid TOML: {err}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
        yard = YardConfig.from_dict({**values.pop("yard", {}), **overrides.pop("yard", {})})
        return cls(yard=yard, **{**values, **overrides})


def policy_for_agent(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """Map ``robot_{i}_high`` to the high-level policy and ``robot_{i}_low`` to the low."""
    if agent_id.endswith("_high"):
        return HIGH_LEVEL_POLICY
    if agent_id.endswith("_low"):
        return LOW_LEVEL_POLICY
    raise ValueError(f"agent id {agent_id!r} is neither a high- nor a low-level agent")


def build_config(cfg: TrainConfig, start_from: Path | None = None) -> HierarchicalPPOConfig:
    """The whole RLlib setup, in RLlib's order; ``start_from`` a checkpoint to continue."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from hmarl.metrics import YardMetrics
    from hmarl.rl_modules import ChickenSetModule, GoalReachingModule
    from hmarl.yard import ChickenYardEnv

    config = (
        HierarchicalPPOConfig()
        .environment(ChickenYardEnv, env_config=cfg.yard.to_dict())
        .env_runners(
            num_env_runners=cfg.num_env_runners,
            num_envs_per_env_runner=cfg.num_envs_per_env_runner,
            batch_mode="truncate_episodes",
            # RLlib 2.60's multi-agent env runner converts every finished episode to
            # NumPy again on every step; with our short episodes that grows
            # quadratically and halves sampling speed. Lists are fine for PPO.
            episodes_to_numpy=False,
        )
        .training(
            lr=cfg.lr,
            gamma=cfg.gamma,
            lambda_=cfg.lambda_,
            entropy_coeff=cfg.entropy_coeff,
            train_batch_size_per_learner=cfg.train_batch_size,
            minibatch_size=cfg.minibatch_size,
            num_epochs=cfg.num_epochs,
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    HIGH_LEVEL_POLICY: RLModuleSpec(
                        module_class=ChickenSetModule,
                        model_config={"hidden_sizes": cfg.high_hidden},
                    ),
                    LOW_LEVEL_POLICY: RLModuleSpec(
                        module_class=GoalReachingModule,
                        model_config={"hidden_sizes": cfg.low_hidden},
                    ),
                }
            )
        )
        .multi_agent(
            policies={HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY}, policy_mapping_fn=policy_for_agent
        )
        .callbacks(YardMetrics)
        .debugging(seed=cfg.seed)
        .hierarchy(high_level_start_success=cfg.high_level_start_success)
    )
    if cfg.modules == "default":
        _use_default_modules(config, cfg)
    if start_from is not None:
        # Restored inside the algorithm's own setup, so it works the same in this
        # process and in a Tune trial (the callback travels with the config).
        config.callbacks(on_algorithm_init=functools.partial(_restore, str(start_from.resolve())))
    return config


def _use_default_modules(config: HierarchicalPPOConfig, cfg: TrainConfig) -> None:
    """RLlib's default MLP modules, which need the Dict observations flattened."""
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    config.env_runners(
        env_to_module_connector=lambda env, spaces, device: FlattenObservations(multi_agent=True)
    )
    sizes = {HIGH_LEVEL_POLICY: cfg.high_hidden, LOW_LEVEL_POLICY: cfg.low_hidden}
    config.rl_module(
        rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={
                module_id: RLModuleSpec(model_config=DefaultModelConfig(fcnet_hiddens=hidden))
                for module_id, hidden in sizes.items()
            }
        )
    )


def _restore(checkpoint: str, algorithm: HierarchicalPPO, **kwargs: Any) -> None:
    algorithm.restore_from_path(checkpoint)


class Deadline:
    """When to stop: an iteration count, a wall-clock budget, or both.

    The budget covers the whole command, so training stops unless one more
    iteration (as long as the longest recent one) and the wrap-up still fit: the
    final checkpoint, Ray's shutdown and the closing evaluation, together
    ``WRAP_UP_SECONDS``.
    """

    WRAP_UP_SECONDS = 6.0

    def __init__(self, stop_iters: int | None, time_budget: float | None, start: float) -> None:
        self.stop_iters = stop_iters
        self.end = None if time_budget is None else start + time_budget
        self._last: float | None = None
        self._recent: deque[float] = deque(maxlen=5)

    def done(self, iteration: int) -> bool:
        """Call once per finished iteration: should training stop now?"""
        now = time.monotonic()
        # Iteration lengths are measured from the first result on: the time before
        # it is mostly Ray's and Tune's start-up, which does not come again.
        if self._last is not None:
            self._recent.append(now - self._last)
        self._last = now
        longest = max(self._recent, default=0.0)
        if self.stop_iters is not None and iteration >= self.stop_iters:
            return True
        # Stop unless one more iteration and the wrap-up still fit.
        return self.end is not None and now + longest + self.WRAP_UP_SECONDS > self.end


def train(
    cfg: TrainConfig,
    on_result: Callable[[dict], None] | None = None,
    started: float | None = None,
) -> Path:
    """Train until ``cfg``'s stop condition; return the final checkpoint's path.

    ``started`` is when the command began (``time.monotonic()``), which the time
    budget counts from; by default, now.
    """
    import ray

    start = time.monotonic() if started is None else started
    if cfg.stop_iters is None and cfg.time_budget is None:
        raise ValueError("give a stop condition: stop_iters, time_budget, or both")
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and find_checkpoints(cfg.out):
        raise ValueError(
            f"{cfg.out} already holds a run; pass --resume to continue it or choose another --out"
        )
    start_from = last_good_checkpoint(cfg.out) if cfg.resume else None
    deadline = Deadline(cfg.stop_iters, cfg.time_budget, start)
    # address="local" starts a fresh Ray even if a `ray start` cluster is around;
    # an explicit address joins that cluster instead.
    if cfg.address:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        run = _train_with_tune if cfg.use_tune else _train_directly
        return run(build_config(cfg, start_from), cfg, deadline, on_result or (lambda r: None))
    finally:
        ray.shutdown()


def _train_directly(
    config: HierarchicalPPOConfig, cfg: TrainConfig, deadline: Deadline, on_result: Callable
) -> Path:
    """The algorithm in this process: the tutorial's ``RUN_WITH_TUNE = False``."""
    from hmarl.run_log import RunLog

    algo = HierarchicalPPO(config=config)
    try:
        log = RunLog(cfg.out, cfg.yard)
        last_saved = None
        while True:
            result = algo.train()
            iteration = result["training_iteration"]
            log.write(result)
            on_result(result)
            stop = deadline.done(iteration)
            if stop or iteration % cfg.checkpoint_every == 0:
                last_saved = save_checkpoint(algo, cfg.out, iteration)
            if stop:
                log.close()
                return last_saved
    finally:
        algo.stop()


def save_checkpoint(algo: Any, out: Path, iteration: int) -> Path:
    """Save to ``out/checkpoint_<iteration>`` atomically: a temp folder, then a rename."""
    final = out / f"checkpoint_{iteration:06d}"
    tmp = out / f".{final.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


class _ReportProgress(tune.Callback):
    """Hands each result from the trial to the command's progress display.

    Tune pickles its callbacks with the experiment, and a display (locks, a
    terminal) does not pickle, so this holds none: it calls the module's
    ``_on_result``, which the running command sets.
    """

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **_):
        _on_result(result)


def _on_result(result: dict) -> None:
    """Replaced by the running command's progress display."""


def _train_with_tune(
    config: HierarchicalPPOConfig, cfg: TrainConfig, deadline: Deadline, on_result: Callable
) -> Path:
    """The same algorithm as a Tune trial: Tune checkpoints and logs it.

    A resumed run is a new trial in the same folder that starts from the last
    checkpoint (``build_config(start_from=...)``). Unlike ``Tuner.restore`` this
    also extends a run that finished, and it obeys the new command's limits.
    """
    global _on_result
    _on_result = on_result
    out = cfg.out.resolve()
    run_config = tune.RunConfig(
        name=out.name,
        storage_path=str(out.parent),
        stop=lambda trial_id, result: deadline.done(result["training_iteration"]),
        callbacks=[_ReportProgress()],
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=cfg.checkpoint_every, checkpoint_at_end=True
        ),
    )
    tuner = tune.Tuner(HierarchicalPPO, param_space=config, run_config=run_config)
    result = tuner.fit()[0]
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")
    return Path(result.checkpoint.path)


def last_good_checkpoint(folder: Path) -> Path:
    """The newest checkpoint in a run that loads (an interrupted save may not)."""
    try:
        return load_policy(folder).checkpoint
    except CheckpointError as err:
        raise ValueError(f"nothing to resume in {folder}: {err}") from None
