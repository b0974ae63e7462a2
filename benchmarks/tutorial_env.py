"""A faithful re-implementation of the 2022 tutorial's chicken yard, for benchmarks only.

Written from SPEC.md and the tutorial's slides (``shared/seed``) for Gymnasium and
RLlib 2.60: the same constants, the same objects (a target system holding one
autonomous-agent object per robot), and the same per-step work: positions as
float64 arrays, a new observation dict per agent per step with the full chicken
arrays, a per-chicken distance loop, and the episode ending when each robot comes
within the threshold of *any* chicken (its choice did not matter, which is the bug
hmarl fixes). It is what hmarl's env is measured against, not something to use.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv

NUM_CHICKENS = 10
NUM_OCEAN_FEATURES = 5
NUM_DIRECTIONS = 8
MOVE_AMOUNT = 0.03
CLOSENESS_THRESHOLD = 0.03
STEP_REWARD = -0.001
TIMEOUT = 1000


class YourAutonomousAgent:
    def __init__(self) -> None:
        self.position: np.ndarray | None = None
        self.ocean: np.ndarray | None = None
        self.chicken_choice: int | None = None

    def initialize(self, rng: np.random.Generator) -> None:
        self.position = rng.random(2)
        self.ocean = rng.random(NUM_OCEAN_FEATURES)
        self.ocean = self.ocean / np.linalg.norm(self.ocean)


class YourTargetSystem:
    def __init__(self) -> None:
        self.chicken_ocean: np.ndarray | None = None
        self.chicken_positions: np.ndarray | None = None
        self.robot_1 = YourAutonomousAgent()
        self.robot_2 = YourAutonomousAgent()
        self.timestep = 0

    def initialize_yard(self, rng: np.random.Generator) -> None:
        self.chicken_positions = rng.random((NUM_CHICKENS, 2))
        self.chicken_ocean = rng.random((NUM_CHICKENS, NUM_OCEAN_FEATURES))
        for i in range(NUM_CHICKENS):
            self.chicken_ocean[i, :] = self.chicken_ocean[i, :] / np.linalg.norm(
                self.chicken_ocean[i, :]
            )
        self.robot_1.initialize(rng)
        self.robot_2.initialize(rng)
        self.timestep = 0

    def move(self, robot: YourAutonomousAgent, direction: int) -> None:
        x, y = robot.position
        if direction in (0, 1, 7):  # N, NE, NW
            y -= MOVE_AMOUNT
        if direction in (3, 4, 5):  # SE, S, SW
            y += MOVE_AMOUNT
        if direction in (1, 2, 3):  # NE, E, SE
            x += MOVE_AMOUNT
        if direction in (5, 6, 7):  # SW, W, NW
            x -= MOVE_AMOUNT
        robot.position = np.clip(np.array([x, y], dtype=np.float64), 0.0, 1.0)

    def close_chicken(self, robot: YourAutonomousAgent) -> int | None:
        for i in range(NUM_CHICKENS):
            if np.linalg.norm(robot.position - self.chicken_positions[i]) < CLOSENESS_THRESHOLD:
                return i
        return None


class TutorialEnv(MultiAgentEnv):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        self.target_system = YourTargetSystem()
        box = lambda *shape: spaces.Box(0.0, 1.0, shape=shape, dtype=np.float64)  # noqa: E731
        self.high_level_obs_space = spaces.Dict(
            {
                "chicken_oceans": box(NUM_CHICKENS, NUM_OCEAN_FEATURES),
                "chicken_positions": box(NUM_CHICKENS, 2),
                "robot_ocean": box(NUM_OCEAN_FEATURES),
                "robot_position": box(2),
            }
        )
        self.low_level_obs_space = spaces.Dict(
            {"robot_position": box(2), "chicken_positions": box(NUM_CHICKENS, 2)}
        )
        self.possible_agents = ["robot_1_high", "robot_1_low", "robot_2_high", "robot_2_low"]
        self.agents = []
        self.observation_spaces = {
            a: self.high_level_obs_space if "high" in a else self.low_level_obs_space
            for a in self.possible_agents
        }
        self.action_spaces = {
            a: spaces.Discrete(NUM_CHICKENS if "high" in a else NUM_DIRECTIONS)
            for a in self.possible_agents
        }

    def _robots(self) -> dict[str, YourAutonomousAgent]:
        return {"robot_1": self.target_system.robot_1, "robot_2": self.target_system.robot_2}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target_system.initialize_yard(self.np_random)
        yard = self.target_system
        self.done = {"robot_1": False, "robot_2": False}
        obs = {}
        for name, robot in self._robots().items():
            obs[f"{name}_high"] = {
                "chicken_oceans": yard.chicken_ocean,
                "chicken_positions": yard.chicken_positions,
                "robot_ocean": robot.ocean,
                "robot_position": robot.position,
            }
        return obs, {}

    def step(self, action_dict):
        obs, rew, terminated, truncated, info = {}, {}, {}, {}, {}
        yard = self.target_system
        yard.timestep += 1
        for name, robot in self._robots().items():
            if f"{name}_high" in action_dict:
                robot.chicken_choice = action_dict[f"{name}_high"]
            elif f"{name}_low" in action_dict:
                yard.move(robot, action_dict[f"{name}_low"])
                rew[f"{name}_low"] = STEP_REWARD
                chicken = yard.close_chicken(robot)
                if chicken is not None:
                    compat = float(np.dot(robot.ocean, yard.chicken_ocean[chicken]))
                    rew[f"{name}_high"] = compat
                    terminated[f"{name}_high"] = terminated[f"{name}_low"] = True
                    self.done[name] = True
            if not self.done[name]:
                obs[f"{name}_low"] = {
                    "robot_position": robot.position,
                    "chicken_positions": yard.chicken_positions,
                }
        if yard.timestep >= TIMEOUT:
            for name in self._robots():
                self.done[name] = True
                truncated[f"{name}_low"] = True
        terminated["__all__"] = all(self.done.values())
        truncated["__all__"] = yard.timestep >= TIMEOUT
        return obs, rew, terminated, truncated, info
