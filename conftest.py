"""Doctest collection: the benchmark tasks' modules import their packages (the extra
``benchmarks``), so without it pytest leaves them out, as their tests skip."""

import importlib.util

collect_ignore_glob = [
    f"src/hmarl/tasks/{task}/*.py"
    for task, package in (("lbf", "lbforaging"), ("rware", "rware"))
    if importlib.util.find_spec(package) is None
]
