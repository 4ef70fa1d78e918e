"""Trainer callbacks: metric points and progress into the database, cancellation every step.

The worker's heartbeat is a separate thread (see `Heartbeat`), so a long model load or a slow
step never looks like a dead worker.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update
from transformers import TrainerCallback

from backend.config import RunConfig
from backend.cpu import Lease
from backend.runs.trackers import LOCATIONS
from db import Database, MetricPoint, Run, RunStatus
from db.models import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


class DatabaseCallback(TrainerCallback):
    """Writes each log line as metric points, keeps step/total/ETA current, honours cancel requests."""

    def __init__(self, database: Database, run_id: int, tokens_per_epoch: int = 0):
        self.database = database
        self.run_id = run_id
        self.tokens_per_epoch = tokens_per_epoch
        self.cancelled = False
        self._t0 = 0.0
        self._step0 = 0
        self.last_step_at: float | None = None  # time.monotonic() at the end of the newest step

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.monotonic()
        self._step0 = state.global_step  # non-zero when resuming
        with self.database.session() as s:
            run = s.get(Run, self.run_id)
            run.total_steps = state.max_steps
            run.step = state.global_step

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        points = [
            MetricPoint(run_id=self.run_id, step=state.global_step, name=k, value=float(v))
            for k, v in (logs or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and k != "epoch"
        ]
        if points:
            with self.database.session() as s:
                s.add_all(points)
            shown = " ".join(f"{p.name} {p.value:.4g}" for p in points)
            log.info("step %d/%d %s", state.global_step, state.max_steps, shown)

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step_at = time.monotonic()
        elapsed = self.last_step_at - self._t0
        done = state.global_step - self._step0
        sec_per_step = elapsed / done if done else None
        with self.database.session() as s:
            # The step is written first, then the cancel flag read in the same transaction: a search that
            # prunes asks to cancel only while steps are left (queue.cancel_run(if_steps_left=True)), so
            # an ask that lands before this write is seen here, and one after it is refused there.
            s.execute(
                update(Run)
                .where(Run.id == self.run_id)
                .values(step=state.global_step, total_steps=state.max_steps, epoch=float(state.epoch or 0.0))
            )
            run = s.get(Run, self.run_id)
            live = dict(run.metrics or {})
            if sec_per_step:
                live["sec_per_step"] = round(sec_per_step, 4)
                live["eta_seconds"] = round(sec_per_step * max(state.max_steps - state.global_step, 0), 1)
            run.metrics = live
            if run.cancel_requested_at is not None:
                self.cancelled = True
        if self.cancelled:
            log.info("cancel requested: saving a checkpoint and stopping at step %d", state.global_step)
            control.should_save = True
            control.should_training_stop = True
        return control


class ThreadShare(TrainerCallback):
    """Before each step, take this moment's share of the CPU cores (fewer threads while others compute)."""

    def __init__(self, share: Lease):
        self.share = share

    def on_step_begin(self, args, state, control, **kwargs):
        self.share.follow()


class Heartbeat:
    """A daemon thread stamping runs.heartbeat_at every few seconds while the worker lives."""

    def __init__(self, database: Database, run_id: int, every: float = HEARTBEAT_SECONDS):
        self.database, self.run_id, self.every = database, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every * 2)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._beat()
            except Exception:  # a locked database for a moment must not kill training
                log.warning("heartbeat write failed", exc_info=True)

    def _beat(self) -> None:
        with self.database.session() as s:
            run = s.get(Run, self.run_id)
            if run is not None and run.status == RunStatus.running:
                run.heartbeat_at = utcnow()


class TrackerLinks(TrainerCallback):
    """Once the integrations have opened their runs (they come before this callback), note each run's id
    in run_dir/trackers.json and give MLflow the run's Tuneboard settings as a JSON artifact."""

    def __init__(self, where: dict[str, dict[str, Any]], cfg: RunConfig, run_dir: Path):
        self.where, self.cfg, self.run_dir = where, cfg, run_dir

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if "mlflow" in self.where:
            import mlflow

            active = mlflow.active_run()
            if active is not None:
                mlflow.log_dict(self.cfg.to_dict(), "tuneboard/config.json")
                self.where["mlflow"].update(run_id=active.info.run_id, experiment_id=active.info.experiment_id)
        if "wandb" in self.where:
            import wandb

            if wandb.run is not None:
                run_folder = str(Path(wandb.run.dir).parent)  # offline-run-...: what `wandb sync` takes
                self.where["wandb"].update(run_id=wandb.run.id, dir=run_folder, url=wandb.run.url or "")
        (self.run_dir / LOCATIONS).write_text(json.dumps(self.where, indent=1))
