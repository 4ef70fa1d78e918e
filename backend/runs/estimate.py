"""How long a run will train on this machine: its steps times seconds per step measured here, not a constant.

Seconds per step come from, first found:
1. the newest run in this workspace with the same shape (dataset, model, task, method, batch, cutoff,
   precision, ...) that logged `sec_per_step` (its worker measures it from its first steps on);
2. a calibration (`calibrate`): the run's own model, data and Trainer, 1 warm-up + 3 steps in this
   process, cached in the workspace (calibration.json) for that shape.
Machines differ a lot (2.1 s per step of the quick start on a CPU with fast bf16, 8.4 s on an AVX2-only
one), so the Train tab shows this estimate before Start, and the Runs page the live ETA after.

    estimate(database, workspace, cfg)    # {"steps": 60, "sec_per_step": 2.4, "seconds": 144.0, "measured_by": "run 3"}
    calibrate(database, workspace, cfg)   # then estimate() answers from the calibration
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from backend import cpu
from backend.config import RunConfig
from backend.workspace import Workspace
from db import Database, Run

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
CALIBRATION_STEPS = 3  # timed, after one warm-up step
RECENT_RUNS = 200  # how far back a run of the same shape is looked for
# The settings that change how long one step takes (not how many steps there are).
SHAPE = (
    "dataset",
    "model",
    "task",
    "method",
    "batch_size",
    "grad_accum",
    "cutoff_len",
    "precision",
    "devices",
    "lora_rank",
    "lora_targets",
    "freeze_layers",
    "grad_checkpointing",
    "packing",
    "optimizer",
    "nproc",
)


def shape_key(config: dict[str, Any]) -> str:
    """The speed-relevant settings of a run's config, as one string (the calibration cache's key)."""
    return json.dumps({k: config.get(k) for k in SHAPE}, sort_keys=True)


def planned_steps(database: Database, workspace: Workspace, cfg: RunConfig) -> int:
    """Optimizer steps the run will take: max_steps, else epochs over the dataset's training rows, at
    least min_steps (backend/training/length.py)."""
    if cfg.max_steps:
        return cfg.max_steps
    from backend.data import find_dataset, load_rows
    from backend.training.length import planned_steps as steps_for

    return steps_for(cfg, len(load_rows(workspace, find_dataset(database, cfg.dataset).id, "train")))


def measured(database: Database, workspace: Workspace, cfg: RunConfig) -> tuple[float, str] | None:
    """Seconds per step of this shape measured here, and by what ("run 3" or "calibration"), or None."""
    key = shape_key(cfg.to_dict())
    with database.session() as s:
        recent = s.execute(select(Run.id, Run.config, Run.metrics).order_by(Run.id.desc()).limit(RECENT_RUNS)).all()
    for run_id, config, metrics in recent:
        seconds = (metrics or {}).get("sec_per_step")
        if seconds and shape_key(config or {}) == key:
            return float(seconds), f"run {run_id}"
    cached = _calibrations(workspace).get(key)
    return (float(cached), "calibration") if cached else None


def estimate(database: Database, workspace: Workspace, cfg: RunConfig) -> dict[str, Any]:
    """Steps, seconds per step measured here (None when nothing was), their product, and the source."""
    steps = planned_steps(database, workspace, cfg)
    found = measured(database, workspace, cfg)
    sec = found[0] if found else None
    return {
        "steps": steps,
        "sec_per_step": round(sec, 3) if sec else None,
        "seconds": round(steps * sec, 1) if sec else None,
        "measured_by": found[1] if found else None,
    }


def calibrate(database: Database, workspace: Workspace, cfg: RunConfig) -> dict[str, Any]:
    """Time a few real steps of this run (its model, data and Trainer) here; cache and return the estimate."""
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from backend.data import find_dataset, load_rows
    from backend.devices import DTYPES, resolve_device, resolve_precision
    from backend.models.catalog import resolve_model
    from backend.tasks import get_task
    from backend.training.methods import prepare
    from backend.training.optim import optimizer, training_arguments

    device = resolve_device(cfg.devices)
    precision = resolve_precision(cfg.precision, device)
    steps = CALIBRATION_STEPS + 1
    trial = dataclasses.replace(cfg, max_steps=steps, logging_steps=steps + 1, early_stopping_patience=0, nproc=1)
    rows = load_rows(workspace, find_dataset(database, cfg.dataset).id, "train")
    if not rows:
        raise ValueError(f"dataset '{cfg.dataset}' has no training rows to measure a step with")
    model_dir = resolve_model(cfg.model, workspace.models_dir, cfg.trust_remote_code)
    timer = _step_timer()
    with cpu.lease(), tempfile.TemporaryDirectory(prefix="calibration-") as out:
        torch.manual_seed(cfg.seed)
        built = get_task(cfg.task).build(trial, model_dir, rows, [], DTYPES[precision])
        callbacks = prepare(built.model, trial, built.layer_groups)
        args = training_arguments(
            trial,
            Path(out),
            has_eval=False,
            device=device,
            precision=precision,
            group_by_length=not cfg.packing and "input_ids" in getattr(built.train, "column_names", ()),
        )
        args.report_to = []
        trainer = built.trainer_cls(
            model=built.model,
            args=args,
            train_dataset=built.train,
            data_collator=built.collator,
            callbacks=[*callbacks, timer],
            optimizer_cls_and_kwargs=optimizer(trial, device),
        )
        for chatty in (PrinterCallback, ProgressCallback):  # the app's and CLI's output stay clean
            trainer.remove_callback(chatty)
        trainer.train()
    timed = timer.seconds[1:] or timer.seconds  # the first step warms up (allocations, kernels)
    sec = sum(timed) / len(timed)
    _save_calibration(workspace, shape_key(cfg.to_dict()), sec)
    log.info("calibrated %s: %.2f s per step over %d steps", cfg.model, sec, len(timed))
    return estimate(database, workspace, cfg)


def _calibrations(workspace: Workspace) -> dict[str, float]:
    path = workspace.root / CALIBRATION_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or a damaged file: measure again
        return {}


def _save_calibration(workspace: Workspace, key: str, sec: float) -> None:
    path = workspace.root / CALIBRATION_FILE
    saved = {**_calibrations(workspace), key: round(sec, 4)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1))
    tmp.replace(path)


def _step_timer() -> Any:
    """A Trainer callback recording the wall time of each optimizer step (saving and logging excluded)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._t0)

    return StepTimer()
