"""Start-up: where the seconds before `hmarl train`'s first iteration go.

Each mode (through Tune, the default, and ``--no-tune``) runs in a fresh Python
process doing what the command does, with a clock read at each phase:

- start: from launching the process to the first line of this script (the interpreter);
- imports: the CLI and training modules (light: Ray, RLlib and torch come later);
- plan: the task and its settings;
- Ray: starting a local Ray while RLlib and torch are imported in a second thread,
  then the conformance check of the task's env;
- to the first result: building the algorithm (in Tune, first the trial's own
  process and its imports) and the first iteration, whose own length the result
  reports (``time_this_iter_s``), so the rest is set-up;
- wrap-up: the last checkpoint and Ray's shutdown.

Run: ``python benchmarks/startup.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

PHASES = ("start", "imports", "plan", "Ray", "set-up", "first iteration", "wrap-up")

CHILD = r"""
import json, sys, time
began = time.time()
marks = {"start": began - float(sys.argv[1])}
from hmarl.cli import quiet
from hmarl.training import TrainConfig, plan, train
marks["imports"] = time.time() - began
import hmarl.training as training
cfg = TrainConfig(stop_iters=1, use_tune=sys.argv[2] == "tune", out=sys.argv[3])
p = plan(cfg, check_env=False)
marks["plan"] = time.time() - began - marks["imports"]
quiet()
start_ray = training._start_ray_checking_env
def timed_start(*args):
    t = time.time(); start_ray(*args); marks["Ray"] = time.time() - t
training._start_ray_checking_env = timed_start
first = {}
def on_result(result):
    first.setdefault("at", time.time()); first.setdefault("own", result["time_this_iter_s"])
t = time.time()
train(p, on_result=on_result)
end = time.time()
to_first = first["at"] - t - marks["Ray"]
marks["set-up"] = to_first - first["own"]
marks["first iteration"] = first["own"]
marks["wrap-up"] = end - first["at"]
print("MARKS" + json.dumps(marks))
"""


def run(mode: str, out: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(time.time()), mode, out],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("MARKS"))
    return json.loads(line[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (medians shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hmarl-startup-") as tmp:
        for mode in ("tune", "direct"):
            runs = [run(mode, f"{tmp}/{mode}{i}") for i in range(args.repeats)]
            medians = {phase: statistics.median(r[phase] for r in runs) for phase in PHASES}
            total = sum(medians.values())
            cells = "  ".join(f"{phase} {medians[phase]:4.1f}" for phase in PHASES)
            print(f"{mode:<6} {cells}  = {total:4.1f} s (median of {args.repeats})")


if __name__ == "__main__":
    main()
