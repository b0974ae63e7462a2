"""Policy inspection: layers, shapes and parameter counts, checked against hand counts."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from hmarl.inspection import describe_policies, print_policies
from hmarl.tasks.chicken_yard.env import ChickenYardEnv
from hmarl.tasks.chicken_yard.modules import ChickenSetModule, GoalReachingModule
from hmarl.tasks.chicken_yard.simulation import YardConfig

OCEAN = 5
CHICKEN_FEATURES = 3 * OCEAN + 3  # chicken, robot, their product; offset (2) and distance
LOW_FEATURES = 5  # direction (2), distance, robot position (2)
VALUE_FEATURES = LOW_FEATURES + 1  # and the time left


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


@pytest.fixture(scope="module")
def env() -> ChickenYardEnv:
    return ChickenYardEnv(YardConfig(num_chickens=4, num_ocean_features=OCEAN))


def modules(env: ChickenYardEnv, hidden: list[int]) -> dict[str, nn.Module]:
    return {
        "high_level_policy": ChickenSetModule(
            observation_space=env.observation_spaces["robot_1_high"],
            action_space=env.action_spaces["robot_1_high"],
            model_config={"hidden_sizes": hidden},
        ),
        "low_level_policy": GoalReachingModule(
            observation_space=env.observation_spaces["robot_1_low"],
            action_space=env.action_spaces["robot_1_low"],
            model_config={"hidden_sizes": hidden},
        ),
    }


@pytest.mark.parametrize(
    ("hidden", "high_total", "low_total"),
    [
        (
            [8],
            # scorer 18-8-1, value encoder 18-8, value head on mean+max pooling 16-1
            linear(18, 8) + linear(8, 1) + linear(18, 8) + linear(16, 1),
            # policy net 5-8-8 (eight directions), value net 6-8-1
            linear(5, 8) + linear(8, 8) + linear(6, 8) + linear(8, 1),
        ),
        (
            [8, 4],
            linear(18, 8)
            + linear(8, 4)
            + linear(4, 1)
            + linear(18, 8)
            + linear(8, 4)
            + linear(8, 1),
            linear(5, 8) + linear(8, 4) + linear(4, 8) + linear(6, 8) + linear(8, 4) + linear(4, 1),
        ),
    ],
    ids=["one-hidden-layer", "two-hidden-layers"],
)
def test_parameter_counts_match_hand_counts(
    env: ChickenYardEnv, hidden: list[int], high_total: int, low_total: int
) -> None:
    summaries = describe_policies(modules(env, hidden))
    assert list(summaries) == ["high_level_policy", "low_level_policy"]
    high, low = summaries["high_level_policy"], summaries["low_level_policy"]
    assert high.total_parameters == high_total
    assert low.total_parameters == low_total
    for summary in (high, low):
        assert sum(layer.parameters for layer in summary.layers) == summary.total_parameters
        assert {layer.kind for layer in summary.layers} == {"Linear"}
    sizes = [CHICKEN_FEATURES, *hidden, 1]
    scorer = [layer for layer in high.layers if layer.name.startswith("scorer.")]
    assert [layer.shapes for layer in scorer] == [
        {"weight": (n_out, n_in), "bias": (n_out,)} for n_in, n_out in itertools.pairwise(sizes)
    ]
    assert [layer.parameters for layer in scorer] == [
        linear(n_in, n_out) for n_in, n_out in itertools.pairwise(sizes)
    ]
    policy_net = [layer for layer in low.layers if layer.name.startswith("policy_net.")]
    assert policy_net[0].shapes["weight"] == (hidden[0], LOW_FEATURES)
    assert policy_net[-1].shapes["weight"] == (8, hidden[-1])  # eight directions
    value_net = [layer for layer in low.layers if layer.name.startswith("value_net.")]
    assert value_net[0].shapes["weight"] == (hidden[0], VALUE_FEATURES)


def test_one_hidden_layer_in_detail(env: ChickenYardEnv) -> None:
    high = describe_policies(modules(env, [8]))["high_level_policy"]
    assert [(layer.name, layer.parameters) for layer in high.layers] == [
        ("scorer.0", 152),
        ("scorer.2", 9),
        ("value_encoder.0", 152),
        ("value_head", 17),
    ]
    assert high.total_parameters == 330


def test_classes_and_spaces(env: ChickenYardEnv) -> None:
    summaries = describe_policies(modules(env, [8]))
    high, low = summaries["high_level_policy"], summaries["low_level_policy"]
    assert high.module_class == "hmarl.tasks.chicken_yard.modules.ChickenSetModule"
    assert low.module_class == "hmarl.tasks.chicken_yard.modules.GoalReachingModule"
    assert high.observation_space == {
        "chicken_oceans": "Box(0.0, 1.0, (4, 5), float32)",
        "chicken_positions": "Box(0.0, 1.0, (4, 2), float32)",
        "robot_ocean": "Box(0.0, 1.0, (5,), float32)",
        "robot_position": "Box(0.0, 1.0, (2,), float32)",
    }
    assert set(low.observation_space) == {"robot_position", "target_position", "time_left"}
    assert high.action_space == "Discrete(4)"  # one action per chicken
    assert low.action_space == "Discrete(8)"


def test_to_dict_is_json(env: ChickenYardEnv) -> None:
    summary = describe_policies(modules(env, [8]))["low_level_policy"]
    data = summary.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["layers"][0] == {
        "name": "policy_net.0",
        "kind": "Linear",
        "shapes": {"weight": [8, 5], "bias": [8]},
        "parameters": 48,
    }
    assert data["total_parameters"] == linear(5, 8) + linear(8, 8) + linear(6, 8) + linear(8, 1)


def test_plain_torch_modules() -> None:
    """Parameters on the module itself are a layer named ""; shared ones count once."""

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.encode = nn.Linear(3, 2)
            self.again = self.encode  # the same layer twice: its weights count once

    summary = describe_policies({"p": Tied()})["p"]
    assert summary.module_class.endswith("Tied")
    assert summary.observation_space == "unknown"
    assert summary.action_space == "unknown"
    assert [(layer.name, layer.shapes) for layer in summary.layers] == [
        ("", {"scale": ()}),
        ("encode", {"weight": (2, 3), "bias": (2,)}),
    ]
    assert summary.total_parameters == 1 + linear(3, 2)


def test_print_policies_shows_layers_and_totals(env: ChickenYardEnv) -> None:
    console = Console(file=io.StringIO(), width=120, record=True)
    print_policies(describe_policies(modules(env, [8])), console=console)
    text = console.export_text()
    for expected in (
        "high_level_policy: hmarl.tasks.chicken_yard.modules.ChickenSetModule",
        "low_level_policy: hmarl.tasks.chicken_yard.modules.GoalReachingModule",
        "chicken_oceans",
        "action space: Discrete(4)",
        "weight 8×18, bias 8",
        "value_head",
    ):
        assert expected in text
    totals = [line.split()[-2] for line in text.splitlines() if "total" in line]
    assert totals == ["330", "185"]


def test_trained_checkpoint(trained_checkpoint: Path) -> None:
    from hmarl.checkpoints import load_modules

    loaded = load_modules(trained_checkpoint)
    summaries = describe_policies(loaded)
    for policy, module in loaded.items():
        summary = summaries[policy]
        assert summary.total_parameters == sum(p.numel() for p in module.parameters()) > 0
        assert sum(layer.parameters for layer in summary.layers) == summary.total_parameters
    assert summaries["high_level_policy"].action_space == "Discrete(10)"
    assert summaries["low_level_policy"].module_class.endswith("GoalReachingModule")


def test_rllibs_own_loader_reads_a_trained_checkpoint(trained_checkpoint: Path) -> None:
    """A checkpoint stays RLlib's: ``RLModule.from_checkpoint`` gives the same modules."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from hmarl.checkpoints import MODULES_DIR, load_modules

    ours = load_modules(trained_checkpoint)
    theirs = RLModule.from_checkpoint(str(trained_checkpoint / MODULES_DIR))
    assert set(theirs.keys()) == set(ours)
    for policy, module in ours.items():
        assert type(theirs[policy]) is type(module)
        for name, tensor in module.state_dict().items():
            assert torch.equal(theirs[policy].state_dict()[name], tensor), (policy, name)
