"""LBF as an RLlib multi-agent env: lbforaging's own env, a thin adapter (spec sheet below)."""

from __future__ import annotations

from typing import Any

from lbforaging.foraging.environment import ForagingEnv

from hmarl.tasks.lbf.config import LBFConfig
from hmarl.tasks.packaged.env import PackageEnv, make_package_env

__all__ = ["LBFConfig", "LBFEnv"]


class LBFEnv(PackageEnv):
    """SPEC SHEET TODO"""

    def __init__(
        self, config: LBFConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.config = LBFConfig.coerce(config)
        super().__init__(make_package_env(self.config.env_id, ForagingEnv), render_mode)

    def time_limit_reached(self) -> bool:
        # The package ends an episode when no food is left or at its step limit.
        return bool(self.package.field.sum() > 0)

    def make_renderer(self) -> Any:
        from hmarl.tasks.lbf.render import ForagingRenderer

        return ForagingRenderer(self.package)
