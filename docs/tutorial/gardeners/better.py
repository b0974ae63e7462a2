"""The garden with a batched env and a chooser that discounts faster: the tutorial's last step.

A chooser's return with the run's gamma (0.99 per env step) is mostly the waterings of
its later decisions, which this one barely changes; at 0.9 a decision's own watering
weighs most, and the chooser learns which plant to choose.
"""

from __future__ import annotations

import dataclasses

from .batched_task import TASK as BATCHED

TASK = dataclasses.replace(BATCHED, ppo={"chooser": {"gamma": 0.9}})
