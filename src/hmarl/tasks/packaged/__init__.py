"""What the benchmark tasks (``lbf``, ``rware``) share: a package's own gym env, flat.

Both packages offer one Gymnasium env whose observations, actions and rewards are
tuples with one entry per agent. :mod:`.agents` names those agents, :mod:`.env` makes
the package's env an RLlib ``MultiAgentEnv`` and :mod:`.batched` holds what their
batched re-implementations share (resets, episode bookkeeping, the step's result).
"""
