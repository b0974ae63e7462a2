"""What the benchmark tasks (``lbf``, ``rware``) share: a package's own gym env, flat.

Both packages offer one Gymnasium env whose observations, actions and rewards are
tuples with one entry per agent. :mod:`.package` makes it by its registered id,
:mod:`.agents` names its agents, :mod:`.env` makes it an RLlib ``MultiAgentEnv`` and
:mod:`.batched` holds what the batched re-implementations share (resets, episode
bookkeeping, the step's result).
"""
