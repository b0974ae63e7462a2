"""RWARE as an RLlib multi-agent env: rware's own env, a thin adapter (spec sheet below)."""

from __future__ import annotations

from typing import Any

from rware.warehouse import Warehouse

from hmarl.tasks.packaged.env import PackageEnv, make_package_env
from hmarl.tasks.rware.config import WarehouseConfig

__all__ = ["WarehouseConfig", "WarehouseEnv"]


class WarehouseEnv(PackageEnv):
    """SPEC SHEET TODO"""

    def __init__(
        self, config: WarehouseConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.config = WarehouseConfig.coerce(config)
        super().__init__(make_package_env(self.config.env_id, Warehouse), render_mode)

    def time_limit_reached(self) -> bool:
        # The package ends an episode only by its step limit or its inactivity limit.
        return True

    def make_renderer(self) -> Any:
        from hmarl.tasks.rware.render import WarehouseRenderer

        return WarehouseRenderer(self.package)
