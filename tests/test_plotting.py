"""Learning-curve plots: from a real Tune run and from hand-written logs; errors for bad input."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from hmarl import plotting
from hmarl.plotting import DPI, find_results, panels, plot_run, read_trial, reference_levels
from hmarl.runs import RunRecord
from hmarl.tasks.chicken_yard import TASK

NAN = math.nan
NO_REFERENCE: dict = {}
POLICIES = ("high_level_policy", "low_level_policy")


def result(iteration: int, value: float = NAN, schedule_open: float = 0.0) -> dict[str, Any]:
    """A result line as RLlib writes it, nested, with every plotted key set to ``value``."""
    return {
        "training_iteration": iteration,
        "trial_id": "default",
        "num_env_steps_sampled_lifetime": 1000.0 * iteration,
        "time_this_iter_s": 2.0,
        "hmarl": {"schedule_open": schedule_open},
        "env_runners": {
            "episode_len_mean": value,
            "num_episodes": "7",  # RLlib writes some numbers as strings
            "hmarl": {
                "return": dict.fromkeys(POLICIES, value),
                "metric": {"mean_compatibility": value, "success_rate": value, "mean_steps": value},
            },
        },
        "learners": {
            p: {
                "entropy": value,
                "mean_kl_loss": value,
                "clip_fraction": value,
                "vf_explained_var": value,
            }
            for p in POLICIES
        },
    }


def record_yard_run(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    RunRecord("chicken_yard", "chicken_yard", TASK.env_config_dict({"timeout": 200}), "t").write(
        folder
    )


def write_results(folder: Path, lines: list[dict], tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)
    return path


def check_png(path: Path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] == 14 * DPI and image.size[1] > 4 * DPI
        image.load()  # decodes the whole file: it was written completely
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures ``plot_run`` saves, kept to read what was drawn (the PNGs are written)."""
    figures: list[Figure] = []
    save = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def panel_axes(figure: Figure) -> dict[str, Any]:
    """Each shown panel's axes, by title, in the figure's order."""
    return {ax.get_title(): ax for ax in figure.axes if ax.get_visible() and ax.get_title()}


def lines(ax: Any, style: str) -> list[Any]:
    """The panel's lines of one style: "-" curves, "--" reference levels, ":" the schedule."""
    return [line for line in ax.get_lines() if line.get_linestyle() == style]


def references(ax: Any) -> dict[str, float]:
    return {line.get_label(): float(line.get_ydata()[0]) for line in lines(ax, "--")}


def legend_texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.legends[0].get_texts()]


@pytest.fixture
def direct_run(tmp_path: Path) -> Path:
    """A direct run's folder: the first iteration finished no episode (NaN)."""
    run = tmp_path / "direct"
    record_yard_run(run)
    write_results(run, [result(1), *(result(i, 0.1 * i, float(i > 2)) for i in range(2, 6))])
    return run


def test_plots_a_tune_run(trained_run: Path, tmp_path: Path, drawn: list[Figure]) -> None:
    (result_file,) = find_results(trained_run)
    trial = read_trial(result_file)
    assert trial.policies() == list(POLICIES) or sorted(trial.policies()) == sorted(POLICIES)
    assert list(trial.iterations) == [1, 2]
    assert np.all(np.diff(trial.steps) > 0) and np.all(np.diff(trial.seconds) > 0)
    out = plot_run(trained_run, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    check_png(out)
    # What was drawn: each panel's curve is the run's own series, against its env steps.
    axes = panel_axes(drawn[0])
    assert list(axes) == [p.title for p in panels(TASK, trial.policies())]
    for panel in panels(TASK, trial.policies()):
        curves = lines(axes[panel.title], "-")
        assert len(curves) == len(panel.keys), panel.title
        for curve, key in zip(curves, panel.keys.values(), strict=True):
            x, y = curve.get_data()
            known = np.isfinite(trial.curve(key))  # iterations where no episode ended: none
            assert list(x) == list(trial.steps[known]), panel.title
            np.testing.assert_array_equal(y, trial.curve(key)[known], err_msg=panel.title)
    entropy = {c.get_label(): c.get_ydata() for c in lines(axes["learning: policy entropy"], "-")}
    assert sorted(entropy) == ["high_level", "low_level"]
    # The schedule holds the high level back in the tiny run: only the low level learned.
    assert np.isfinite(entropy["low_level"]).all()
    # The trial folder alone plots too, and an existing file is replaced.
    check_png(plot_run(result_file.parent, out))


@pytest.mark.parametrize(
    "reference",
    [
        None,  # computed on the run's task and env, from its record
        NO_REFERENCE,
        # as `hmarl evaluate --json` prints them (None: not known)
        {
            "random": {
                "returns": {"high_level_policy": -0.3},
                "success_rate": 0.4,
                "mean_steps": None,
            }
        },
    ],
    ids=["computed", "none", "given"],
)
def test_plots_a_direct_run(
    direct_run: Path, tmp_path: Path, reference: dict | None, drawn: list[Figure]
) -> None:
    check_png(plot_run(direct_run, tmp_path / "curves.png", reference, reference_episodes=50))
    (figure,) = drawn
    assert figure.get_suptitle().startswith("Learning curves: direct")
    axes = panel_axes(figure)
    assert list(axes) == [p.title for p in panels(TASK, list(POLICIES))]
    high = axes["high_level: mean return per agent (sampled actions)"]
    # Iterations 1-5 at 1000 steps each; the first finished no episode (no point).
    (curve,) = lines(high, "-")
    x, y = curve.get_data()
    assert list(x) == [2000, 3000, 4000, 5000]
    np.testing.assert_allclose(y, [0.2, 0.3, 0.4, 0.5])
    # The schedule opened at the end of iteration 3: a dotted line there, in every panel.
    for title, ax in axes.items():
        assert [line.get_xdata()[0] for line in lines(ax, ":")] == [3000], title
    assert legend_texts(figure)[:2] == ["trained policy", "schedule lets the held policy learn"]
    success = axes["low_level: success rate"]
    steps = axes["low_level: mean steps"]
    if reference is None:  # the random policy and the oracle, measured on the run's env
        assert set(references(success)) == {"random policy", "oracle policy"}
        assert references(success)["oracle policy"] == 1.0
        assert references(success)["random policy"] < 1.0
        assert references(steps)["oracle policy"] < references(steps)["random policy"]
        assert "oracle policy" in legend_texts(figure)
    elif reference == NO_REFERENCE:
        assert not any(lines(ax, "--") for ax in axes.values())
    else:  # only the levels given, where given (no mean steps: None)
        assert references(high) == {"random policy": -0.3}
        assert references(success) == {"random policy": 0.4}
        assert references(steps) == {}
        assert references(axes["low_level: mean return per agent (sampled actions)"]) == {}


def test_a_run_without_a_record_plots_without_references(tmp_path: Path) -> None:
    run = tmp_path / "bare"
    write_results(run, [result(i, 0.5) for i in (1, 2)])
    check_png(plot_run(run, tmp_path / "curves.png"))


def test_panels_follow_the_task() -> None:
    titles = [p.title for p in panels(TASK, list(POLICIES))]
    assert titles[:3] == [
        "high_level: mean return per agent (sampled actions)",
        "low_level: mean return per agent (sampled actions)",
        "mean episode length (env steps)",
    ]
    assert "high_level: mean compatibility" in titles and "low_level: success rate" in titles
    assert [t for t in titles if t.startswith("learning")] == [
        "learning: policy entropy",
        "learning: KL divergence per update",
        "learning: clip fraction",
        "learning: value explained variance",
    ]
    assert len(panels(None, ["a"])) == 1 + 1 + 4  # no task: returns, length, learning


def test_plots_every_trial(tmp_path: Path, drawn: list[Figure]) -> None:
    older = write_results(tmp_path / "run" / "trial_b", [result(i, 0.5) for i in (1, 2)])
    newer = write_results(tmp_path / "run" / "trial_a", [result(1, 0.2)])
    os.utime(older, (1, 1))
    assert find_results(tmp_path / "run") == [older, newer]
    check_png(plot_run(tmp_path / "run", tmp_path / "curves.png", NO_REFERENCE))
    # A curve per trial in each panel, each trial its own colour, named in the legend.
    (figure,) = drawn
    length = panel_axes(figure)["mean episode length (env steps)"]
    (b, a) = lines(length, "-")
    assert list(b.get_ydata()) == [0.5, 0.5] and list(a.get_ydata()) == [0.2]
    assert b.get_color() != a.get_color()
    assert legend_texts(figure) == ["trial_b (0:04)", "trial_a (0:02)"]


def test_long_episodes_draw_a_line_through_the_iterations_that_ended_some(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    # As in RWARE (500-step episodes, every env ending at once): an episode ends in every
    # 16th of 160 iterations. Drawn with NaN gaps, each value was an invisible point.
    rows = [result(i, 0.01 * i if i % 16 == 0 else NAN) for i in range(1, 161)]
    write_results(tmp_path / "run", rows)
    check_png(plot_run(tmp_path / "run", tmp_path / "c.png", NO_REFERENCE))
    length = panel_axes(drawn[0])["mean episode length (env steps)"]
    (curve,) = lines(length, "-")
    x, y = curve.get_data()
    assert list(x) == [16_000.0 * k for k in range(1, 11)]
    np.testing.assert_allclose(y, [0.16 * k for k in range(1, 11)])
    assert curve.get_marker() == "o"  # ten points: each shown


def test_reference_levels_random_below_oracle() -> None:
    config = TASK.env_config_dict()
    levels = reference_levels(TASK, config, episodes=100)
    assert levels == reference_levels(TASK, config, episodes=100)  # seeded
    random, oracle = levels["random"].metrics, levels["oracle"].metrics
    assert random["mean_compatibility"] < oracle["mean_compatibility"]
    assert random["success_rate"] < oracle["success_rate"] == 1.0
    assert oracle["mean_steps"] < random["mean_steps"]


def test_trial_series(tmp_path: Path) -> None:
    path = write_results(
        tmp_path,
        [result(1), result(2, 0.5), result(3, 0.6, 1.0)],
        tail=json.dumps(result(4, 0.7))[:40],  # still being written: skipped
    )
    trial = read_trial(path)
    assert trial.name == tmp_path.name  # a direct run's trial id says nothing
    assert list(trial.steps) == [1000, 2000, 3000]
    assert list(trial.seconds) == [2, 4, 6]
    success = trial.curve("env_runners/hmarl/metric/success_rate")
    assert math.isnan(success[0]) and list(success[1:]) == [0.5, 0.6]
    assert trial.schedule_start == 3000  # opened at the end of the third iteration


def test_resumed_run_keeps_the_redone_iterations(tmp_path: Path) -> None:
    """Interrupted after iteration 3, resumed from a checkpoint at 1: 2 and 3 are redone."""
    lines = [result(1, 0.1), result(2, 0.2), result(3, 0.3), result(2, 0.8), result(3, 0.9)]
    trial = read_trial(write_results(tmp_path, lines))
    assert list(trial.iterations) == [1, 2, 3]
    assert list(trial.curve("env_runners/episode_len_mean")) == [0.1, 0.8, 0.9]


def test_schedule_open_from_the_start(tmp_path: Path) -> None:
    trial = read_trial(write_results(tmp_path, [result(i, 0.5, 1.0) for i in (1, 2)]))
    assert trial.schedule_start is None


def test_reference_levels_given_as_results(direct_run: Path, tmp_path: Path) -> None:
    levels = reference_levels(TASK, TASK.env_config_dict(), episodes=20)
    check_png(plot_run(direct_run, tmp_path / "curves.png", levels))


def test_failed_write_leaves_the_old_file(
    direct_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "curves.png"
    out.write_bytes(b"old plot")

    def disk_full(self: Figure, file: Any, **kwargs: Any) -> None:
        file.write(b"half a png")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(ValueError, match=r"cannot write .*No space left on device"):
        plot_run(direct_run, out, NO_REFERENCE)
    assert out.read_bytes() == b"old plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "direct"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('{"training_iteration": 1, "num_env_steps_sampled_lifetime": 10}\n{oops\n{}\n', "line 2"),
        ('{"training_iteration": 1}\n', "not a training result"),
        ("[1, 2]\n", "not a training result"),
    ],
    ids=["empty", "blank", "corrupt", "no-steps", "not-an-object"],
)
def test_bad_result_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "result.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        plot_run(tmp_path / "run", tmp_path / "curves.png", NO_REFERENCE)
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("missing", "does not exist"),
        ("empty_folder", "holds no result.json"),
        ("a_file", "is not a folder"),
    ],
)
def test_bad_run_folder(tmp_path: Path, run: str, message: str) -> None:
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=message):
        plot_run(tmp_path / run, tmp_path / "curves.png")


def test_plot_of_a_missing_run_says_so(cli) -> None:
    """Not that its default PNG, inside the missing folder, cannot be written."""
    done = cli("plot", "/nonexistent")
    assert (done.returncode, done.stderr) == (2, "hmarl plot: error: /nonexistent does not exist\n")


def test_the_legs_of_a_resumed_run_make_one_line(tmp_path: Path) -> None:
    """Through Tune each leg is a trial folder; interrupted after 3, resumed from 2."""
    run = tmp_path / "run"
    record_yard_run(run)
    first = write_results(run / "trial_a", [result(i, 0.1 * i) for i in (1, 2, 3)])
    write_results(run / "trial_b", [result(i, 0.2 * i) for i in (3, 4)])
    os.utime(first, (1, 1))
    legs = plotting._runs(find_results(run))
    assert legs == [sorted(run.rglob("result.json"), key=lambda p: p.stat().st_mtime)]
    trial = read_trial(*legs[0])
    assert list(trial.iterations) == [1, 2, 3, 4]
    assert list(trial.curve("env_runners/episode_len_mean")) == pytest.approx([0.1, 0.2, 0.6, 0.8])


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("curves.jpg", "ending in .png"),
        ("curves", "ending in .png"),
        ("missing/curves.png", "not an existing folder"),
        ("a_file/curves.png", "not an existing folder"),
        ("folder.png", "is a folder"),
    ],
)
def test_bad_out_path(direct_run: Path, tmp_path: Path, out: str, message: str) -> None:
    (tmp_path / "a_file").write_text("")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=message):
        plot_run(direct_run, tmp_path / out, NO_REFERENCE)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(direct_run: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="not writable"):
        plot_run(direct_run, locked / "curves.png", NO_REFERENCE)


def test_bad_reference(direct_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reference 'oracle'"):
        plot_run(direct_run, tmp_path / "curves.png", {"oracle": 0.9})
