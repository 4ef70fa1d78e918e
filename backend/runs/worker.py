"""One run, start to end, in its own process: setup -> train -> save -> finish.

    python -m backend.runs.worker RUN_ID [--workspace DIR]

Started by the supervisor (backend.runs.supervisor) with the run already marked `running`. Every outcome is
written to the database: completed, cancelled (checkpoint kept) or failed (message + log tail).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from backend import cpu
from backend.config import ADAPTERS, RunConfig
from backend.runs.files import LOG_FILE, checkpoint_steps, dir_size, log_tail
from backend.workspace import Workspace
from db import Artifact, Database, MetricPoint, Run, RunStatus
from db.models import as_utc, utcnow

log = logging.getLogger("backend.runs.worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.runs.worker", description=__doc__)
    parser.add_argument("run_id", type=int, nargs="?")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--claim", action="store_true", help="started by a cluster launcher: take the queued run")
    parser.add_argument("--spare", action="store_true", help="started ahead: the run id comes on stdin")
    args = parser.parse_args(argv)
    cpu.wait_politely()  # before torch is imported (a worker started by hand; the supervisor's env says so too)
    if args.spare:  # imports done before the run exists (backend.runs.spare)
        from backend.runs.spare import wait_for_run

        args.run_id = wait_for_run()
        if args.run_id is None:
            return 0
    if args.run_id is None:
        parser.error("the run id is missing")

    workspace = Workspace.resolve(args.workspace)
    database = Database.open(workspace.database_url, upgrade=False)  # whoever queued the run migrated it
    run_dir = workspace.run_dir(args.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    _log_to(run_dir / LOG_FILE)

    if args.claim:  # srun/torchrun on several nodes: the first worker up marks the run running
        from backend.runs.external import claim

        claim(database, args.run_id, int(os.environ.get("WORLD_SIZE", "1")))
    with database.session() as s:
        run = s.get(Run, args.run_id)
        if run is None or run.status != RunStatus.running:
            log.error("run %s is not marked running (status: %s); refusing to start", args.run_id, run and run.status)
            return 2
        config, dataset_id = run.config, run.dataset_id
    from backend.runs.callbacks import Heartbeat

    lead = _rank() == 0  # under torchrun every rank trains; only rank 0 writes status and artifacts
    try:
        cfg = RunConfig.from_dict(config)
        with Heartbeat(database, args.run_id) if lead else contextlib.nullcontext(), _cpu_share(cfg) as share:
            status, metrics, artifacts = train(database, workspace, args.run_id, cfg, dataset_id, share)
        if lead:
            completed = status == RunStatus.completed and cfg.eval_suites
            after = _after_run(database, workspace, args.run_id) if completed else None
            _finish(database, args.run_id, status, metrics=metrics, artifacts=artifacts, also=after)
            if after is not None:
                log.info("run %s: evaluation %s queued on %s", args.run_id, after.id, cfg.eval_suites)
        log.info("run %s %s", args.run_id, status.value)
        return 0
    except Exception as e:  # any failure becomes a clear status, never a silent death
        log.exception("run %s failed", args.run_id)
        from backend.runs.failures import explain_exception  # out-of-memory gets advice on what to change

        if lead:
            reason = f"{explain_exception(e)}\n\n{log_tail(run_dir)}"
            _finish(database, args.run_id, RunStatus.failed, reason=reason)
        return 1


def _after_run(database: Database, workspace: Workspace, run_id: int) -> Any:
    """The evaluation the run names (eval_suites: base vs run), to be added in the transaction that marks
    the run completed, or None. Named as a string, as kinds.py names drivers: backend.evaluate builds on
    this package. A suite that cannot be read is logged, not fatal: the run completes without it."""
    import importlib

    try:
        return importlib.import_module("backend.evaluate.after").evaluation_after_run(database, workspace, run_id)
    except Exception:
        log.exception("run %s: the evaluation after training could not be queued", run_id)
        return None


def _cpu_share(cfg: RunConfig) -> contextlib.AbstractContextManager[cpu.Lease | None]:
    """A run on the CPU holds a share of the cores while it lives; a GPU run holds none."""
    from backend.devices import resolve_device

    return cpu.lease(cpu.RUN) if resolve_device(cfg.devices) == "cpu" else contextlib.nullcontext()


def _trackers(database: Database, workspace: Workspace, run_id: int, cfg: RunConfig, args) -> list:
    """Rank 0 reports to the chosen trackers under the run's name; a callback notes where (backend.runs.trackers)."""
    from backend.runs import trackers
    from backend.runs.callbacks import TrackerLinks

    with database.session() as s:
        name = s.get(Run, run_id).name
    where = trackers.prepare(cfg, run_id, name, workspace)
    args.report_to, args.run_name = cfg.trackers, name
    if "trackio" in where:  # the Trainer hands trackio TrainingArguments.project, not $TRACKIO_PROJECT
        args.project = where["trackio"]["project"]
    return [TrackerLinks(where, cfg, workspace.run_dir(run_id))]


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def train(
    database: Database,
    workspace: Workspace,
    run_id: int,
    cfg: RunConfig,
    dataset_id: int | None,
    share: cpu.Lease | None = None,
) -> tuple[RunStatus, dict[str, Any], list[tuple[str, Path]]]:
    """Build model and data, run the Trainer, save the result. Returns status, metrics, artifacts.

    `share`: on the CPU, the run's share of the cores, followed before every step (backend.cpu)."""
    import torch
    import yaml

    from backend.data import load_rows
    from backend.devices import DTYPES, check_devices, resolve_device, resolve_precision
    from backend.models.catalog import resolve_model
    from backend.runs.callbacks import DatabaseCallback, ThreadShare
    from backend.tasks import get_task
    from backend.training.length import trainer_max_steps
    from backend.training.methods import GradualUnfreezing, prepare
    from backend.training.optim import optimizer, stopping_callbacks, training_arguments

    # 1. setup
    if dataset_id is None:
        raise ValueError("the run's dataset was deleted; start a new run with another dataset")
    if not cfg.gpu_ids:  # listed GPUs were checked when queued; the supervisor shows only them (as 0..n-1)
        check_devices(cfg)
    device = resolve_device(cfg.devices)
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    run_dir = workspace.run_dir(run_id)
    lead = _rank() == 0
    if lead:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    log.info(
        "run %s: %s of %s on %s in %s, %d process(es), %d CPU thread(s) (settings in config.yaml)",
        run_id,
        cfg.method,
        cfg.model,
        device,
        precision,
        world,
        torch.get_num_threads(),
    )
    cpu_threads = torch.get_num_threads()
    model_dir = resolve_model(cfg.model, workspace.models_dir, cfg.trust_remote_code)
    train_rows, eval_rows = load_rows(workspace, dataset_id, "train"), load_rows(workspace, dataset_id, "validation")
    if cfg.teacher:  # distillation: the data's task builds the student, the distill task adds the teacher
        from backend.runs.results import model_folder

        teacher = model_folder(database, workspace, cfg.teacher)
        built = get_task("distill").build(cfg, model_dir, train_rows, eval_rows, DTYPES[precision], teacher)
    else:
        built = get_task(cfg.task).build(cfg, model_dir, train_rows, eval_rows, DTYPES[precision])
    method_callbacks = prepare(built.model, cfg, built.layer_groups)
    gradual = [cb for cb in method_callbacks if isinstance(cb, GradualUnfreezing)]
    # As training starts: gradual unfreezing begins with the head and thaws a group at a time.
    trainable = gradual[0].trainable_at_start() if gradual else built.trainable_params
    total = built.total_params
    log.info(
        "%d training rows, %d tokens/epoch; trainable params %d of %d (%.2f%%)",
        len(built.train),
        built.train_tokens,
        trainable,
        total,
        100 * trainable / total,
    )

    # A small dataset trains at least min_steps (more epochs); the saved config keeps what was asked.
    floor = dataclasses.replace(cfg, max_steps=max(trainer_max_steps(cfg, len(built.train)), 0))
    args = training_arguments(
        floor,
        run_dir / "checkpoints",
        has_eval=built.eval is not None,
        device=device,
        precision=precision,
        # Length-grouped batches pad little; they need token ids (images have none).
        group_by_length=not cfg.packing and "input_ids" in getattr(built.train, "column_names", ()),
    )
    callback = DatabaseCallback(database, run_id, built.train_tokens)
    links = _trackers(database, workspace, run_id, cfg, args) if lead and cfg.trackers else []
    trainer = built.trainer_cls(
        model=built.model,
        args=args,
        train_dataset=built.train,
        eval_dataset=built.eval,
        data_collator=built.collator,
        compute_metrics=built.compute_metrics,
        # Only rank 0 writes to the database; StopTogether (last) shares its cancel with every rank.
        callbacks=[
            *method_callbacks,
            *([callback] if lead else []),
            *links,
            *stopping_callbacks(cfg),
            *([ThreadShare(share)] if share else []),
        ],
        optimizer_cls_and_kwargs=optimizer(cfg, device),
    )

    # 2. train (resuming from the newest checkpoint when the run folder has one)
    resume = _last_complete_checkpoint(Path(args.output_dir))
    first_step = int(Path(resume).name.split("-")[-1]) if resume else 0  # the step the checkpoint holds
    if resume:
        log.info("resuming from %s", resume)
        if lead:
            _forget_points_after(database, run_id, first_step)
    startup = _since_start(database, run_id)  # claim to training: imports, model, data, Trainer
    log.info("ready to train %.1f s after the run started", startup)
    t0 = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.monotonic() - t0

    # 3. save (rank 0; the evaluation below is collective, so every rank takes part)
    out = run_dir / ("adapter" if cfg.method in ADAPTERS else "model")
    if lead and built.save is not None:
        built.save(trainer, out)
    elif lead:
        trainer.model.save_pretrained(out)
    if lead and hasattr(built.tokenizer, "save_pretrained"):
        built.tokenizer.save_pretrained(out)
    saved = time.monotonic() - (callback.last_step_at or t0 + seconds)
    log.info("saved the %s %.1f s after the last step", out.name, saved)
    # A run resumed in place trained before: its time adds up, and its speed is this segment's own.
    earlier_seconds = _earlier_train_seconds(database, run_id) if resume else 0.0
    steps = trainer.state.global_step
    segment_epochs = float(trainer.state.epoch or 0) * ((steps - first_step) / steps if steps else 0.0)
    metrics = {
        "train_loss": _train_loss(database, run_id, float(result.training_loss), resumed=bool(resume)),
        "final_loss": _last_loss(trainer.state.log_history),
        "train_seconds": round(earlier_seconds + seconds, 1),
        "tokens_per_second": round(built.train_tokens * segment_epochs / seconds, 1)
        if seconds and segment_epochs
        else None,
        "trainable_params": trainable,
        "total_params": total,
        "precision": precision,
        "device": device,
        "train_rows": len(built.train),
        "world_size": args.world_size,
        "cpu_threads": cpu_threads,  # as training began; then it follows who shares the cores (log.txt)
        "peak_memory_mb": _peak_memory_mb(device),
        "method": cfg.method,
        "optimizer": cfg.optimizer,
        "startup_seconds": round(startup, 1),
        "save_seconds": round(saved, 2),
    }
    checks = time.monotonic()
    if built.eval is not None:
        for k, v in trainer.evaluate().items():
            if isinstance(v, float):
                metrics[k] = round(v, 4)
            elif isinstance(v, dict):  # classification: per_class scores, confusion_matrix {labels, matrix}
                metrics[k.removeprefix("eval_")] = v
    if lead and built.final_metrics is not None and not callback.cancelled:
        try:  # held-out answers and the self-check score a trained model: a failure there keeps the run
            metrics.update(built.final_metrics(trainer))
        except Exception as e:
            from backend.runs.failures import explain_exception

            log.exception("run %s: the after-training checks failed; the trained model is kept", run_id)
            metrics["final_checks_error"] = explain_exception(e)
    metrics["checks_seconds"] = round(time.monotonic() - checks, 1)  # validation and the answers after training
    log.info("checked the trained model in %.1f s", metrics["checks_seconds"])
    status = RunStatus.cancelled if callback.cancelled else RunStatus.completed
    return status, metrics, [(out.name, out)]


def _since_start(database: Database, run_id: int) -> float:
    """Seconds since the supervisor started the run (its claim), by the database's clock."""
    with database.session() as s:
        started = s.get(Run, run_id).started_at
    return (utcnow() - as_utc(started)).total_seconds() if started else 0.0


def _earlier_train_seconds(database: Database, run_id: int) -> float:
    """The training time a run resumed in place recorded before (0 for a run resumed as a new one). Only a
    segment whose worker ended by itself (completed, or cancelled at a step) recorded one: a killed worker's
    segment counts in the run's duration but not here."""
    with database.session() as s:
        return float((s.get(Run, run_id).metrics or {}).get("train_seconds") or 0.0)


def _peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated on CUDA; else this process's peak resident memory (Linux: KiB)."""
    import resource

    import torch

    if device == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing (trainer_state.json is written last); a worker
    killed while saving leaves a partial folder, which is skipped."""
    complete = checkpoint_steps(folder)
    newest = complete[-1][0] if complete else -1
    for step, _ in checkpoint_steps(folder, complete_only=False):
        if step > newest:
            log.warning("skipping checkpoint-%d: incomplete (the worker stopped while saving it)", step)
    return str(complete[-1][1]) if complete else None


def _forget_points_after(database: Database, run_id: int, step: int) -> None:
    """Steps after the checkpoint are trained again; their old points would double the curve."""
    from sqlalchemy import delete

    with database.session() as s:
        s.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id, MetricPoint.step > step))


def _train_loss(database: Database, run_id: int, trainer_loss: float, resumed: bool) -> float:
    """The mean training loss of the whole run. After a resume the Trainer sums only this segment's
    losses but divides by every step (a cancelled-and-resumed run looked far better than it was), so
    the run's logged loss curve, which holds every segment, is averaged instead."""
    if resumed:
        from backend.runs.query import curve

        losses = [value for _, value in curve(database, run_id, "loss")]
        if losses:
            return round(sum(losses) / len(losses), 4)
    return round(trainer_loss, 4)


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["loss"] for h in history if "loss" in h]
    return round(float(losses[-1]), 4) if losses else None


def _finish(
    database: Database,
    run_id: int,
    status: RunStatus,
    *,
    metrics: dict[str, Any] | None = None,
    artifacts: list[tuple[str, Path]] = (),
    reason: str | None = None,
    also: Any = None,
) -> None:
    """Mark the run ended; `also` (a row: the evaluation after training) is added in the same transaction."""
    with database.session() as s:
        if also is not None:
            s.add(also)
        run = s.get(Run, run_id)
        run.status = status
        run.finished_at = utcnow()
        run.reason = reason
        if metrics:
            run.metrics = {**(run.metrics or {}), **metrics}
        for kind, path in artifacts:  # a resumed run saves to the same folder: one row for it, not two
            s.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.path == str(path)))
            s.add(Artifact(run_id=run_id, kind=kind, path=str(path), size_bytes=dir_size(path)))


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    rank = f"[rank {_rank()}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {rank}%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
