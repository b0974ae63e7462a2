"""hmarl: deep hierarchical multi-agent reinforcement learning on Ray RLlib.

The worked example is a chicken yard: robots pick a chicken (high level) and walk
to it (low level). Modules, one concept each:

- :mod:`hmarl.simulation`: the yard's rules in plain NumPy (swap this for your system)
- :mod:`hmarl.yard`: the RLlib multi-agent environment, a thin adapter over it
- :mod:`hmarl.batched`: the same rules over many yards at once
- :mod:`hmarl.baselines`: random and oracle policies
"""

__version__ = "0.1.0"
