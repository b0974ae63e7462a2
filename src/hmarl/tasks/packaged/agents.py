"""The agents of a package env, flat: ``agent_0`` .. ``agent_{n-1}``, one shared policy.

Agent ``agent_i`` is the package's agent ``i`` (its index in the package's tuples of
observations, actions and rewards). All agents act every step, for one policy.
"""

from __future__ import annotations

GROUP = "agents"
"""The batched env's one group: every agent, in package order."""
SHARED_POLICY = "shared_policy"
"""The policy every agent acts for (parameter sharing, as in EPyMARL's IPPO)."""


def agent_id(index: int) -> str:
    """The id of the package's agent ``index`` (0-based)."""
    return f"agent_{index}"


def agent_ids(count: int) -> list[str]:
    return [agent_id(i) for i in range(count)]


def policy_of(agent: str) -> str:
    """Every ``agent_i`` acts for :data:`SHARED_POLICY`."""
    prefix, _, index = agent.partition("_")
    if prefix != "agent" or not index.isdigit():
        raise ValueError(f"agent id {agent!r} is not of the form agent_<i>")
    return SHARED_POLICY
