"""The examples in examples/ pass `hmarl check` (hmarl's conformance, RLlib's episodes and
its env checker, seeded runs identical): what a user copies must hold to the protocol."""

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("task", ["simple_spread:TASK", "pickers:FLAT", "pickers:TASK"])
def test_an_example_passes_hmarl_check(task: str, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    done = cli("check", "--task", task, "--episodes", "2")
    assert done.returncode == 0, done.stderr
    assert "passed: hmarl's conformance checks" in done.stdout
