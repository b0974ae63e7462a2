"""Property-based tests of every built-in task's env: configs, seeds and actions drawn.

The tasks come from the registry, so a new built-in task is tested without touching
this file. For each, Hypothesis draws an env config from the task's config dataclass
(small counts and short episodes, see :data:`HINTS`; configs the task's own checks
refuse are dropped), a seed, and every action of every due agent, and checks:

- the protocol, through :func:`hmarl.conformance.check_env`: every observation in its
  space, observations for exactly the due agents and the final ones of agents that
  end, no agent observing again once it ended, ``__all__`` when no agent is due;
- seeded determinism, through :func:`hmarl.conformance.check_determinism`: two envs,
  the same seed and the same drawn actions, identical results;
- bad input refused with ``ValueError`` and nothing changed: an empty step (not a
  clock tick), an action out of range, an action for an unknown agent or for one not
  due, the latter three naming the agent; after them the env gives what an untouched
  twin gives for the same valid step.

Hypothesis runs derandomized, without an example database, so every run (CI's too)
tries the same examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from hmarl.conformance import Transition, assert_same, check_determinism, check_env
from hmarl.registry import EXTRAS, available_tasks, load_task
from hmarl.task import Task, TaskError

# The benchmark tasks (an extra's packages behind a thin adapter) have no settings to
# draw but the env id, and an RWARE episode of 500 drawn steps is too large an
# example: tests/test_benchmark_tasks.py checks their protocol on short episodes.
TASKS = {
    t.name: load_task(t.name)
    for t in available_tasks()
    if t.origin == "built-in" and t.name not in EXTRAS
}

HINTS: dict[str, st.SearchStrategy[Any]] = {
    "num_robots": st.integers(1, 4),
    "num_chickens": st.integers(1, 6),
    "num_ocean_features": st.integers(1, 5),
    "timeout": st.integers(1, 30),
    # Long enough steps and wide enough arrivals that robots do arrive in short episodes.
    "move_amount": st.floats(0.01, 0.5),
    "closeness_threshold": st.floats(0.01, 0.5),
    "team_reward": st.floats(0.0, 1.0),
}
"""Ranges of settings by field name; other fields are drawn near their defaults."""
SMALL = 8
"""Whole-number settings without a hint stay near min(default, SMALL): short episodes."""

SEEDS = st.integers(0, 2**31 - 1)
PROPERTIES = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def near_default(field: dataclasses.Field) -> st.SearchStrategy[Any]:
    """A setting of a task's config: its hint, or a value near its default."""
    if field.name in HINTS:
        return HINTS[field.name]
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        small = min(default, SMALL)
        return st.integers(small - 2, small + 2)
    if isinstance(default, float):
        # Same sign as the default: the checks that configs make are mostly about sign.
        return st.floats(0.5, 2.0).map(lambda f: default * f) if default else st.floats(-1, 1)
    return st.just(default)


def env_configs(task: Task) -> st.SearchStrategy[dict[str, Any]]:
    if task.config is None:
        return st.just({})
    fields = dataclasses.fields(task.config)
    return st.fixed_dictionaries({f.name: near_default(f) for f in fields})


def draw_env_config(data: st.DataObject, task: Task) -> dict[str, Any]:
    """An env config of the task that its own checks accept."""
    values = data.draw(env_configs(task), label="env config")
    try:
        return task.env_config_dict(values)
    except TaskError:
        reject()


def actions_of(space: gym.Space) -> st.SearchStrategy[Any]:
    """An index into a Discrete space; for any other space, a sample from a drawn seed."""
    if isinstance(space, gym.spaces.Discrete):
        return st.integers(0, int(space.n) - 1).map(lambda i: int(space.start) + i)

    def sample(seed: int) -> Any:
        space.seed(seed)
        return space.sample()

    return st.integers(0, 2**32 - 1).map(sample)


class DrawnActions:
    """A :data:`hmarl.conformance.Chooser` whose actions Hypothesis draws.

    One draw per episode, step and agent: asked again (by the second env of
    ``check_determinism``, or by a twin env), it gives the same action.
    """

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.drawn: dict[tuple[int, int, str], Any] = {}

    def __call__(self, last: Transition, agent: str, space: gym.Space) -> Any:
        key = (last.episode, last.step, agent)
        if key not in self.drawn:
            self.drawn[key] = self.data.draw(actions_of(space), label=f"{agent}, step {last.step}")
        return self.drawn[key]


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
@PROPERTIES
@given(data=st.data(), seed=SEEDS)
def test_drawn_episodes_keep_the_protocol(task: Task, data: st.DataObject, seed: int) -> None:
    env = task.make_env(draw_env_config(data, task))
    check_env(env, seed=seed, episodes=2, choose=DrawnActions(data))


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
@PROPERTIES
@given(data=st.data(), seed=SEEDS)
def test_the_same_seed_and_actions_give_the_same_episode(
    task: Task, data: st.DataObject, seed: int
) -> None:
    config = draw_env_config(data, task)
    check_determinism(
        lambda: task.make_env(config), seed=seed, episodes=1, choose=DrawnActions(data)
    )


def bad_steps(
    data: st.DataObject, env: Any, due: set[str], actions: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Action dicts the env must refuse, each with the agent its error must name."""
    yield {}, None  # an empty step is not a clock tick
    victim = data.draw(st.sampled_from(sorted(due)), label="agent given a bad action")
    space = env.get_action_space(victim)
    if isinstance(space, gym.spaces.Discrete):
        low, high = int(space.start), int(space.start + space.n - 1)
        wrong = data.draw(st.integers(high + 1, high + 5) | st.integers(low - 5, low - 1))
        yield {**actions, victim: wrong}, victim
    yield {**actions, "nobody": 0}, "nobody"
    idle = sorted(set(env.possible_agents) - due)
    if idle:
        agent = data.draw(st.sampled_from(idle), label="agent not due")
        yield {**actions, agent: data.draw(actions_of(env.get_action_space(agent)))}, agent


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
@PROPERTIES
@given(data=st.data(), seed=SEEDS)
def test_bad_actions_are_refused_and_change_nothing(
    task: Task, data: st.DataObject, seed: int
) -> None:
    config = draw_env_config(data, task)
    env, twin = task.make_env(config), task.make_env(config)
    obs, infos = env.reset(seed=seed)
    twin.reset(seed=seed)
    choose = DrawnActions(data)
    last = Transition(0, 0, {}, obs, {}, {}, {}, infos)
    while not last.over and last.due:
        actions = {a: choose(last, a, env.get_action_space(a)) for a in sorted(last.due)}
        for bad, named in bad_steps(data, env, last.due, actions):
            with pytest.raises(ValueError) as refused:
                env.step(bad)
            assert named is None or named in str(refused.value), refused.value
        result = env.step(actions)
        where = f"step {last.step + 1}, after refused steps"
        assert_same(result, twin.step(actions), where)
        last = Transition(0, last.step + 1, actions, *result)
