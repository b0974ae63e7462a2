"""Action masks: the module never sees the mask and never picks a masked action; random
policies, evaluation, conformance and the ONNX graph of an export respect them too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from door_task import DOORS, TASK, DoorEnv, observation_space
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns

from hmarl.action_masks import MASKED_LOGIT, MaskError, check_legal, observation_key
from hmarl.conformance import check_env
from hmarl.masked_module import MaskedModule, qualname
from hmarl.policies import RandomPolicy
from hmarl.task_env import make_task_env

ACTIONS = __import__("gymnasium").spaces.Discrete(DOORS)


def masked_module(inner: type = DefaultPPOTorchRLModule, **config) -> MaskedModule:
    return MaskedModule(
        observation_space=observation_space(),
        action_space=ACTIONS,
        model_config={"module": qualname(inner), "model_config": {"fcnet_hiddens": [16], **config}},
    )


def batch(rows: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    mask = (rng.random((rows, DOORS)) < 0.4).astype(np.int8)
    mask[np.arange(rows), rng.integers(DOORS, size=rows)] = 1
    values = rng.random((rows, DOORS)).astype(np.float32)
    return {"observation": torch.from_numpy(values), "action_mask": torch.from_numpy(mask)}


def test_the_wrapped_module_sees_the_observation_only_and_masked_logits_are_finite() -> None:
    module = masked_module()
    assert module.inner.observation_space == observation_space()["observation"]
    obs = batch()
    logits = module.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    masked = obs["action_mask"] == 0
    assert torch.all(logits[masked] == MASKED_LOGIT) and torch.isfinite(logits).all()
    # Changing only what the mask hides moves nothing else: the mask is not an input.
    other = {**obs, "action_mask": torch.ones_like(obs["action_mask"])}
    unmasked = module.forward_exploration({Columns.OBS: other})[Columns.ACTION_DIST_INPUTS]
    assert torch.equal(logits[~masked], unmasked[~masked])


def test_sampling_and_the_greedy_action_never_pick_a_masked_action() -> None:
    module = masked_module()
    obs = batch(rows=512)
    dist_class = module.get_exploration_action_dist_cls()
    logits = module.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    dist = dist_class.from_logits(logits)
    legal = obs["action_mask"].bool()
    for _ in range(20):
        assert legal[torch.arange(512), dist.sample()].all()
    assert legal[torch.arange(512), dist.to_deterministic().sample()].all()


def test_entropy_kl_and_gradients_stay_finite_over_legal_actions() -> None:
    module = masked_module()
    obs = batch()
    out = module.forward_train({Columns.OBS: obs})
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    legal = obs["action_mask"].bool()
    # The entropy is the entropy of the legal actions alone: log(count) at most.
    entropy = dist.entropy()
    assert torch.isfinite(entropy).all()
    assert torch.all(entropy <= torch.log(legal.sum(dim=1).float()) + 1e-5)
    old = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS].detach())
    kl = old.kl(dist)
    assert torch.isfinite(kl).all()
    values = module.compute_values({Columns.OBS: obs})
    (entropy.mean() + values.mean() + kl.mean()).backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_random_policy_and_conformance_draw_legal_actions_only() -> None:
    env = make_task_env(TASK, {})
    # DoorEnv raises on a locked door: a full check proves every action was legal.
    check_env(env, seed=0, episodes=5)
    policy = RandomPolicy(
        {"door": ACTIONS}, seed=0, observation_spaces={"door": observation_space()}
    )
    obs = {k: v.numpy() for k, v in batch(rows=2000).items()}
    actions = policy.act("door", obs)
    assert obs["action_mask"][np.arange(2000), actions].all()
    assert len(np.unique(actions)) == DOORS  # every door, where legal


def test_an_action_a_mask_forbids_is_named() -> None:
    obs = {"observation": np.zeros((2, DOORS)), "action_mask": np.eye(DOORS, dtype=np.int8)[:2]}
    check_legal("door", obs, np.array([0, 1]), (observation_space(), ACTIONS), who="rule")
    with pytest.raises(
        MaskError, match=r"rule picked action 1 for door, which its action_mask forbids \(2 of 2"
    ):
        check_legal("door", obs, np.array([1, 0]), (observation_space(), ACTIONS), who="rule")


class BrokenMask(DoorEnv):
    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem

    def _observe(self) -> dict:
        obs = super()._observe()
        if self.t == 2:
            mask = obs["door_1"]["action_mask"]
            mask[:] = 0 if self.problem == "none" else 2
        return obs


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("none", "door_1's observation: its action_mask allows no action"),
        ("values", "door_1's observation .* is not in Dict"),
    ],
)
def test_conformance_names_a_broken_mask_with_its_agent_and_step(problem, message) -> None:
    env = make_task_env(
        TASK.__class__(
            name="broken", make_env=lambda c: BrokenMask(problem), policy_of=TASK.policy_of
        ),
        {},
    )
    with pytest.raises(AssertionError, match=f"(?s)episode 0, step 2: {message}"):
        check_env(env, seed=0, episodes=1)


def test_a_mask_that_does_not_fit_the_action_space_is_refused() -> None:
    from hmarl.task import TaskError

    class Wide(DoorEnv):
        def action_space(self, agent):
            return __import__("gymnasium").spaces.Discrete(DOORS + 1)

    task = TASK.__class__(name="wide", make_env=lambda c: Wide(), policy_of=TASK.policy_of)
    with pytest.raises(TaskError, match=r"agent door_0: the 'action_mask' has shape \(5,\), but"):
        task.policy_spaces(make_task_env(task, {}))
    assert observation_key(observation_space()) == "observation"
