"""How the benchmarks report a result over seeds: the mean and its 95 % interval."""

from __future__ import annotations

import math
import statistics

from scipy import stats


def interval(values: list[float], spec: str = ".1f") -> str:
    """Mean and the half-width of its 95 % t-interval: "m ± h" (just "m" for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:{spec}}"
    t = stats.t.ppf(0.975, len(values) - 1)
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:{spec}} ± {half:{spec}}"
