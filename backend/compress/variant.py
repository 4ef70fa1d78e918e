"""A compressed variant of a completed run, recorded as a run of its own (parent: the original) whose
metrics set params, size, latency per sample and validation accuracy beside the original's.

    python -m backend.cli compress 3 --prune neurons:0.3,layers:2 --recover-steps 60 --wait --json

The pruned model is written and measured in a scratch folder first; only a variant that was built and
measured becomes a run (nothing is written on a refusal). With `recover_steps`, an ordinary short run
fine-tunes the variant (its model is the variant's folder) and is measured the same way when it ends.
"""

from __future__ import annotations

import copy
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backend.compress.prune import parse
from backend.workspace import Workspace
from db import Artifact, Database, Run, RunStatus

log = logging.getLogger(__name__)

LATENCY_REPEATS = 20  # single-sample forward passes timed per model (median)
TOLERANCE = 0.02  # accuracy points (0-1) a variant may lose before it is flagged
SPARSE_NOTE = (
    "the zeros are stored dense (safetensors): they would save size only in a sparse format (about 1.5x the "
    "nonzero_params x 4 bytes with int32 indices) and time only with a sparse kernel, which a CPU run does not use"
)


def compress_run(
    database: Database,
    workspace: Workspace,
    run_id: int,
    prune: str,
    recover_steps: int = 0,
    tolerance: float = TOLERANCE,
) -> tuple[int, int | None]:
    """Prune run `run_id` into a new completed run; with `recover_steps`, queue its recovery run.
    Returns (variant run id, recovery run id or None)."""
    from backend.export.exporter import validation_rows
    from backend.export.sources import load_source
    from backend.runs.queue import get_run
    from backend.runs.results import model_folder

    steps = parse(prune)
    if recover_steps < 0:
        raise ValueError("setting 'recover_steps' must be 0 (no recovery) or more")
    if not 0 <= tolerance <= 1:
        raise ValueError("setting 'tolerance' must be a share of accuracy in [0, 1], e.g. 0.02 for 2 points")
    run = get_run(database, run_id)  # "run N not found"
    if run.status != RunStatus.completed:
        raise ValueError(f"run {run_id} is {run.status.value}; only a completed run can be compressed")
    _check_kinds(run, steps)
    if recover_steps and any(s.kind == "unstructured" for s in steps):
        raise ValueError(
            "setting 'recover_steps': a plain fine-tune refills the zeros of unstructured pruning; "
            "recover only structured pruning (neurons, layers)"
        )
    folders = model_folder(database, workspace, run_id)
    _check_layers(steps, folders[0])
    source = load_source(run.task, *folders)
    rows = validation_rows(workspace, run)
    model = copy.deepcopy(source.model)
    report = _apply(model, steps)
    scratch = Path(tempfile.mkdtemp(prefix=".compress-", dir=workspace.root / "runs"))
    try:
        _save(model, source, scratch / "model")
        metrics = measure(source, model, rows, scratch / "model", tolerance)
        metrics.update(compressed_from=run_id, compression="prune", prune=",".join(map(str, steps)), pruned=report)
        if "unstructured" in report:  # said where the figures are read: dense zeros save neither size nor time
            metrics["sparse_note"] = SPARSE_NOTE
        variant = _record(database, workspace, run, scratch, metrics, f"{run.name}-pruned")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    recovery = _queue_recovery(database, workspace, run, variant, recover_steps) if recover_steps else None
    return variant, recovery


def measure(source: Any, model: Any, rows: list[dict[str, Any]], folder: Path, tolerance: float) -> dict[str, Any]:
    """The variant and the original side by side: params, size on disk (both as fp32 safetensors), median
    latency of one sample, validation accuracy; flagged when accuracy fell by more than `tolerance`."""
    from backend.export import verify as ev
    from backend.export.sources import eval_batches
    from backend.runs.files import dir_size

    with tempfile.TemporaryDirectory() as tmp:  # the original saved as the variant is: a fair size
        _save(source.model, source, Path(tmp))
        original_size = dir_size(Path(tmp))
    figures = ev.classifier_figures(
        source.logits, lambda x: model(**x).logits, eval_batches(source, rows), source.labels
    )
    variant = {
        "params": _params(model),
        "nonzero_params": _params(model, nonzero=True),
        "size_bytes": dir_size(folder),
        "latency_ms": _latency_ms(model, source.check_input),
        "accuracy": round(figures["accuracy"], 4),
    }
    original = {
        "params": _params(source.model),
        "nonzero_params": _params(source.model, nonzero=True),
        "size_bytes": original_size,
        "latency_ms": _latency_ms(source.model, source.check_input),
        "accuracy": round(figures["source_accuracy"], 4),
    }
    drop = original["accuracy"] - variant["accuracy"]
    out = {
        **variant,
        "original": original,
        "eval_accuracy": variant["accuracy"],
        "eval_rows": figures["eval_rows"],
        "prediction_agreement": round(figures["prediction_agreement"], 4),
        "speedup": round(original["latency_ms"] / variant["latency_ms"], 2) if variant["latency_ms"] else None,
        "size_ratio": round(variant["size_bytes"] / original_size, 3),
        "tolerance": tolerance,
        "flagged": drop > tolerance + 1e-9,
        "total_params": variant["params"],
    }
    if out["flagged"]:
        out["flag"] = f"accuracy fell {drop * 100:.1f} points, over the {tolerance * 100:.1f} tolerated"
    return out


def record_recovery(database: Database, workspace: Workspace, recovery_id: int, tolerance: float = TOLERANCE) -> None:
    """Measure a finished recovery run against the original and keep the figures in its metrics."""
    from backend.export.exporter import validation_rows
    from backend.export.sources import load_source
    from backend.runs.results import model_folder

    with database.session() as s:
        run = s.get(Run, recovery_id)
        if run is None or run.status != RunStatus.completed:
            return
        variant_id = run.parent_id
        original_id = (s.get(Run, variant_id).metrics or {}).get("compressed_from")
    original = load_source(run.task, *model_folder(database, workspace, original_id))
    with database.session() as s:
        orig_run = s.get(Run, original_id)
        s.expunge(orig_run)
    recovered = load_source(run.task, *model_folder(database, workspace, recovery_id))
    folder = workspace.run_dir(recovery_id) / "model"
    figures = measure(original, recovered.model, validation_rows(workspace, orig_run), folder, tolerance)
    with database.session() as s:
        run = s.get(Run, recovery_id)
        prune = (s.get(Run, variant_id).metrics or {}).get("prune")
        extra = {"compressed_from": original_id, "compression": "prune+recover", "prune": prune}
        run.metrics = {**(run.metrics or {}), **figures, **extra}


def _check_layers(steps: list[Any], base: Path) -> None:
    """layers:N against the model's config, before any weight is loaded."""
    import json

    layers = json.loads((base / "config.json").read_text()).get("num_hidden_layers")
    for step in steps:
        if step.kind == "layers" and layers and step.amount >= layers:
            raise ValueError(
                f"setting 'prune': layers:{step.amount:g} would remove all {layers} layers; remove at most {layers - 1}"
            )


def _apply(model: Any, steps: list[Any]) -> dict[str, Any]:
    from backend.compress.prune import apply

    return apply(model, steps)


def _check_kinds(run: Run, steps: list[Any]) -> None:
    """Text classifiers lose heads, neurons, layers or weights; image classifiers (CNNs) channels."""
    from backend.compress.prune import IMAGE_KINDS

    if run.task not in ("text-classification", "image-classification"):
        raise ValueError(f"run {run.id} is a {run.task} run; pruning is built for text and image classifiers")
    image = run.task == "image-classification"
    wrong = [str(p) for p in steps if (p.kind in IMAGE_KINDS) != image]
    if wrong and image:
        raise ValueError(
            f"setting 'prune': {', '.join(wrong)} is for transformers; prune an image classifier's channels "
            "(channels:0.3), or distil it into a smaller network (train --task distill --model resnet18)"
        )
    if wrong:
        raise ValueError(
            f"setting 'prune': {', '.join(wrong)} prunes a CNN image classifier; run {run.id} is a text one"
        )


def _save(model: Any, source: Any, folder: Path) -> None:
    if source.kind == "image-classifier":  # the network and its widths: torchvision builds the full ones
        from backend.shrink import module_shapes
        from backend.tasks import image_classification as ic

        ic.save_model(model, {**source.spec, "module_shapes": module_shapes(model.net)}, folder)
        return
    from backend.tasks.text_classification import save_model

    save_model(model, source.labels, folder)
    source.tokenizer.save_pretrained(folder)


def _params(model: Any, nonzero: bool = False) -> int:
    return int(sum(int((p != 0).sum()) if nonzero else p.numel() for p in model.parameters()))


def _latency_ms(model: Any, inputs: dict[str, Any]) -> float:
    import torch

    times = []
    with torch.no_grad():
        model(**inputs)  # warm-up
        for _ in range(LATENCY_REPEATS):
            start = time.perf_counter()
            model(**inputs)
            times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def _record(
    database: Database, workspace: Workspace, run: Run, scratch: Path, metrics: dict[str, Any], name: str
) -> int:
    """The variant as a completed run (parent: the original), its folder moved into place."""
    from db.models import utcnow

    with database.session() as s:
        variant = Run(
            name=name[:200], status=RunStatus.completed, task=run.task, model=run.model, method=run.method,
            dataset_id=run.dataset_id, config=dict(run.config or {}), metrics=metrics, parent_id=run.id,
            started_at=utcnow(), finished_at=utcnow(),
        )  # fmt: skip
        s.add(variant)
        s.flush()
        target = workspace.run_dir(variant.id)
        if target.exists():  # a folder left by a deleted run of the same id
            shutil.rmtree(target)
        shutil.move(str(scratch), target)
        from backend.runs.files import dir_size

        s.add(
            Artifact(run_id=variant.id, kind="model", path=str(target / "model"), size_bytes=dir_size(target / "model"))
        )
        return variant.id


def _queue_recovery(database: Database, workspace: Workspace, run: Run, variant_id: int, steps: int) -> int:
    """An ordinary short run that fine-tunes the variant on the original's data and settings."""
    from backend.config import RunConfig
    from backend.runs.queue import create_run

    settings = {**(run.config or {}), "model": str(workspace.run_dir(variant_id) / "model"), "max_steps": steps}
    settings.update(method="full", teacher=0, layers_from_teacher=0, early_stopping_patience=0)
    recovery = create_run(database, workspace, RunConfig.from_dict(settings), name=f"{run.name}-pruned-recovered")
    with database.session() as s:
        s.get(Run, recovery.id).parent_id = variant_id
    return recovery.id


def list_variants(database: Database, workspace: Workspace, run_id: int) -> list[dict[str, Any]]:
    """The run, then each compressed variant of it (pruned, recovered, distilled students), oldest first:
    run id, name, kind, params, size_bytes, latency_ms, accuracy, flagged. A finished recovery run that was
    not measured yet (queued without waiting) is measured now."""
    from sqlalchemy import select

    from backend.runs.queue import get_run

    original = get_run(database, run_id)  # "run N not found"
    with database.session() as s:
        later = s.scalars(select(Run).where(Run.id > run_id, Run.status == RunStatus.completed).order_by(Run.id)).all()
        s.expunge_all()
    variants = {r.id for r in later if (r.metrics or {}).get("compressed_from") == run_id}
    for r in later:
        if r.parent_id in variants and "compressed_from" not in (r.metrics or {}):
            record_recovery(database, workspace, r.id)
            variants.add(r.id)
    rows = [_row(original, "original", workspace)]
    for r in later:
        r = get_run(database, r.id) if r.id in variants else r
        if r.id in variants:
            rows.append(_row(r, (r.metrics or {}).get("compression", "prune"), workspace))
        elif (r.config or {}).get("teacher") == run_id:
            rows.append(_row(r, "distill", workspace))
    measured = next((v["metrics_original"] for v in rows[1:] if v["metrics_original"]), {})
    rows[0].update(
        latency_ms=measured.get("latency_ms"), size_bytes=measured.get("size_bytes") or rows[0]["size_bytes"]
    )
    for row in rows:
        row.pop("metrics_original")
    return rows


def _row(run: Run, kind: str, workspace: Workspace) -> dict[str, Any]:
    from backend.runs.files import dir_size

    m = run.metrics or {}
    folder = workspace.run_dir(run.id) / "model"
    return {
        "run_id": run.id,
        "name": run.name,
        "kind": kind,
        "params": m.get("params") or m.get("total_params"),
        "size_bytes": m.get("size_bytes") or (dir_size(folder) if folder.is_dir() else None),
        "latency_ms": m.get("latency_ms"),
        "accuracy": m.get("accuracy", m.get("eval_accuracy")),
        "flagged": bool(m.get("flagged")),
        "metrics_original": m.get("original") or {},
    }
