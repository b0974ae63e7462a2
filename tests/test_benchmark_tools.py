"""Every tool on a trained run of every benchmark variant: LBF and RWARE, flat (IPPO and
MAPPO) and hierarchical. One tiny training iteration each, then `evaluate` (its JSON
``return``), `inspect`, `export` with ONNX graphs (the export evaluates as the run did)
and `watch` to a GIF without a display."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("lbforaging")
pytest.importorskip("rware")

TINY = """
train_batch_size = 256
minibatch_size = 128
num_epochs = 1
num_envs_per_env_runner = 4
"""

VARIANTS = {
    "lbf-flat": ("lbf", "Foraging-8x8-2p-2f-coop-v3", []),
    "lbf-goals": ("lbf", "Foraging-8x8-2p-2f-coop-v3", ["--hierarchy", "goals"]),
    "rware-mappo": ("rware", "rware-tiny-2ag-v2", ["--critic", "central"]),
    "rware-goals": ("rware", "rware-tiny-2ag-v2", ["--hierarchy", "goals"]),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def benchmark_run(request, tmp_path_factory: pytest.TempPathFactory, hmarl) -> tuple[str, Path]:
    task, env_id, flags = VARIANTS[request.param]
    home = tmp_path_factory.mktemp(request.param)
    (home / "tiny.toml").write_text(TINY)
    run = home / "run"
    settings = ["--task", task, "--env-id", env_id, *flags, "--config", str(home / "tiny.toml")]
    once = ["--stop-iters", "1", "--no-tune", "--no-evaluate"]  # one iteration, no more
    done = hmarl("train", *settings, *once, "--out", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    return request.param, run


def test_every_tool_works_on_the_run(benchmark_run: tuple[str, Path], cli, tmp_path) -> None:
    variant, run = benchmark_run
    done = cli("evaluate", str(run), "--episodes", "2", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["actions"] == "sampled"  # the benchmark tasks sample by default
    # The package's return summed over the agents: a share of the food (LBF), the
    # shelves delivered (RWARE); the hand-written policy beside them.
    assert set(result["policies"]) == {
        "trained",
        "random",
        "together" if "lbf" in variant else "fetch",
    }
    for policy in result["policies"].values():
        assert np.isfinite(policy["return"]) and policy["return"] >= 0.0, result

    done = cli("inspect", str(run), "--json")
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout)
    hierarchical = variant.endswith("goals")
    expected = {"shared_policy_high", "shared_policy_low"} if hierarchical else {"shared_policy"}
    assert set(modules) == expected

    export = tmp_path / "export"
    done = cli("export", str(run), "--out", str(export), "--format", "onnx")
    assert done.returncode == 0, done.stderr
    assert {p.stem for p in export.glob("*.onnx")} == expected
    done = cli("evaluate", str(export), "--episodes", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["policies"]["trained"] == result["policies"]["trained"]

    gif = tmp_path / "episode.gif"
    done = cli("watch", str(run), "--out", str(gif))
    assert done.returncode == 0, done.stderr
    with Image.open(gif) as image:
        assert image.n_frames > 1
        frame = np.asarray(image.convert("RGB"))
    assert frame.std() > 0  # something was drawn
