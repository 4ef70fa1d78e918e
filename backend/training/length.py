"""How long a run trains by default: `epochs` over the data, but never fewer than `min_steps` optimizer steps.

A 20-row set at batch 8 makes 3 steps an epoch; 4 epochs are 12 steps, too few for a model to pick the
data up. With the floor (60 by default for sft) it trains 20 epochs, 60 steps; a 120-row set's 4 epochs
are 60 steps already, and a large set keeps its `epochs` (the floor never adds steps to it). An explicit
`max_steps` wins over both.

    planned_steps(cfg, 20)     # 60
    trainer_max_steps(cfg, 20) # 60: what the worker hands the Trainer (-1: count epochs)
"""

from __future__ import annotations

import math

from backend.config import RunConfig


def steps_per_epoch(cfg: RunConfig, rows: int) -> int:
    """Optimizer steps in one pass over `rows` training rows, as the Trainer counts them."""
    batches = math.ceil(rows / (cfg.batch_size * cfg.world_size))
    return max(math.ceil(batches / cfg.grad_accum), 1)


def planned_steps(cfg: RunConfig, rows: int) -> int:
    """Optimizer steps the run takes: max_steps, else epochs over the rows raised to min_steps."""
    if cfg.max_steps:
        return cfg.max_steps
    return max(math.ceil(steps_per_epoch(cfg, rows) * cfg.epochs), cfg.min_steps)


def trainer_max_steps(cfg: RunConfig, rows: int) -> int:
    """TrainingArguments.max_steps: the run's max_steps, the floor when it applies, else -1 (use epochs)."""
    if cfg.max_steps:
        return cfg.max_steps
    by_epochs = math.ceil(steps_per_epoch(cfg, rows) * cfg.epochs)
    return cfg.min_steps if cfg.min_steps > by_epochs else -1
