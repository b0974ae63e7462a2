"""Soak: a long `hmarl train`, its memory and open files sampled every minute.

Runs ``hmarl train --task T --time-budget M*60`` as a user would (a subprocess,
Ray Tune, a local Ray) and, every ``--every`` seconds, sums over the whole
process tree (the command, Ray's processes, the Tune trial): resident memory and
open file descriptors. The tree is the command and its descendants: a local Ray's
GCS and raylet are the command's children, its agents and workers the raylet's,
the Tune trial a worker. Printed: a line per sample, then the peak, and the
growth from the sample at ``--settle`` minutes (start-up and the first
iterations fill caches) to the last one. Flat means growth under 5 %.

Run: ``python benchmarks/soak.py [--minutes 30] [--task chicken_yard]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import psutil

GROWTH_LIMIT = 0.05


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def sample(root: psutil.Process) -> tuple[float, float, int, int]:
    """Resident MiB of the tree and of the command alone, open file descriptors and
    process count of the tree."""
    rss = fds = count = 0
    for process in tree(root):
        try:
            rss += process.memory_info().rss
            fds += process.num_fds()
            count += 1
        except psutil.Error:
            continue
    try:
        own = root.memory_info().rss
    except psutil.Error:
        own = 0
    return rss / 2**20, own / 2**20, fds, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time")
    parser.add_argument("--task", default="chicken_yard")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--settle", type=float, default=5.0, help="minutes before the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hmarl-soak-") as workdir:
        command = [
            sys.executable,
            "-m",
            "hmarl.cli",
            "train",
            "--task",
            args.task,
            "--time-budget",
            str(args.minutes * 60),
            "--no-evaluate",
            "--out",
            f"{workdir}/run",
        ]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        root = psutil.Process(process.pid)
        samples: list[tuple[float, float, float, int, int]] = []
        while process.poll() is None:
            time.sleep(min(args.every, 5.0) if not samples else args.every)
            if process.poll() is not None:
                break
            minute = (time.monotonic() - started) / 60
            rss, own, fds, count = sample(root)
            samples.append((minute, rss, own, fds, count))
            print(
                f"{minute:6.1f} min  {rss:8.0f} MiB resident ({own:6.0f} the command)  "
                f"{fds:5d} open files  {count:3d} processes",
                flush=True,
            )
        if process.returncode != 0:
            sys.exit(f"hmarl train failed with exit code {process.returncode}")
    # Judge only samples of the whole tree: one taken while Ray shuts down at the end
    # sees fewer processes, and less memory, which is no evidence of anything.
    whole = max(s[4] for s in samples)
    settled = [s for s in samples if s[0] >= args.settle and s[4] == whole]
    if len(settled) < 2:
        sys.exit(f"too short to judge: run longer than {args.settle} minutes")
    first, last = settled[0], settled[-1]
    growth = (last[1] - first[1]) / first[1]
    own_growth = (last[2] - first[2]) / first[2]
    flat = growth < GROWTH_LIMIT and last[3] <= first[3] * (1 + GROWTH_LIMIT)
    print(
        f"\n{args.task}, {args.minutes:.0f} min: peak {max(s[1] for s in samples):,.0f} MiB "
        f"resident; from minute {first[0]:.0f} to {last[0]:.0f}: memory {growth:+.1%} "
        f"({first[1]:,.0f} -> {last[1]:,.0f} MiB; the command alone {own_growth:+.1%}, "
        f"{first[2]:,.0f} -> {last[2]:,.0f}), open files {first[3]} -> {last[3]}: "
        + ("flat" if flat else "GROWING")
    )


if __name__ == "__main__":
    main()
