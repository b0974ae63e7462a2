"""A flat multi-agent env (PettingZoo) that knows nothing of hmarl: pickers gather berries.

Two pickers on a 7x7 grid, four berry bushes. Every step each picker moves (stay, up,
down, left, right). A picker on a ripe bush picks it (+1) and the bush regrows 8 to 15
steps later somewhere else. 60 steps an episode. A picker sees its own cell and every
bush: its cell and whether it is ripe.
"""

from typing import ClassVar

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

SIZE, PICKERS, BUSHES, STEPS = 7, 2, 4, 60
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])


class Berries(ParallelEnv):
    metadata: ClassVar[dict] = {"name": "berries_v0"}

    def __init__(self, env_config=None):
        self.possible_agents = [f"picker_{i}" for i in range(PICKERS)]
        self.agents = []
        self._obs = gym.spaces.Box(0.0, 1.0, (2 + 3 * BUSHES,), np.float32)
        self._act = gym.spaces.Discrete(len(MOVES))

    def observation_space(self, agent):
        return self._obs

    def action_space(self, agent):
        return self._act

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed)
        self.pickers = self.rng.integers(SIZE, size=(PICKERS, 2))
        self.bushes = self.rng.integers(SIZE, size=(BUSHES, 2))
        self.regrow = np.zeros(BUSHES, np.int64)  # steps until ripe again (0: ripe)
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def _observe(self):
        bushes = np.concatenate(
            [self.bushes / (SIZE - 1), (self.regrow == 0)[:, None]], axis=1
        ).reshape(-1)
        return {
            a: np.concatenate([self.pickers[i] / (SIZE - 1), bushes]).astype(np.float32)
            for i, a in enumerate(self.possible_agents)
        }

    def step(self, actions):
        moves = np.array([MOVES[int(actions[a])] for a in self.possible_agents])
        self.pickers = np.clip(self.pickers + moves, 0, SIZE - 1)
        self.regrow = np.maximum(self.regrow - 1, 0)
        rewards = dict.fromkeys(self.possible_agents, 0.0)
        for b in range(BUSHES):
            on = (self.pickers == self.bushes[b]).all(axis=1)
            if self.regrow[b] == 0 and on.any():
                rewards[self.possible_agents[int(np.argmax(on))]] += 1.0
                self.regrow[b] = self.rng.integers(8, 16)
                self.bushes[b] = self.rng.integers(SIZE, size=2)
        self.t += 1
        done = self.t >= STEPS
        if done:
            self.agents = []
        no = dict.fromkeys(self.possible_agents, False)
        return self._observe(), rewards, no, dict.fromkeys(self.possible_agents, done), {}
