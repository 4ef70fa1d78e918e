"""Export a completed run in one of eight formats, each checked against its fp32 source before it is offered.

adapter / merged (safetensors + tokenizer + chat template), int8 (torch.ao dynamic quantization),
onnx and onnx-int8 (torch.onnx + onnxruntime), gguf-f16 / gguf-q8_0 / gguf-q4_0 (llama.cpp, Ollama
Modelfile beside it). The export is loaded back by the runtime that will use it (transformers,
onnxruntime, the gguf reader and transformers' GGUF loader) and compared with the source
(backend.export.verify); outside its format's tolerance it is refused and nothing is kept. A kept
export is zipped and recorded as an Artifact whose `verification` holds the figures.

    python -m backend.cli export RUN_ID --format gguf-q8_0 --json
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from backend import cpu
from backend.alignment import model_task
from backend.export import verify as ev
from backend.export.sources import load_source
from backend.runs.files import dir_size
from backend.workspace import Workspace
from db import Artifact, Database, RunStatus

log = logging.getLogger(__name__)

FORMATS = ("adapter", "merged", "int8", "onnx", "onnx-int8", "gguf-f16", "gguf-q8_0", "gguf-q4_0")
TASK_FORMATS = {  # what each task's model can be exported as
    "sft": FORMATS,
    "text-classification": ("adapter", "merged", "int8", "onnx", "onnx-int8"),
    "image-classification": ("merged", "int8", "onnx", "onnx-int8"),
    "reward": ("merged",),  # a one-score sequence classifier, LoRA merged in
}
BYTES_PER_WEIGHT = {  # on disk, per fp32 weight of the source: what the free-disk check expects
    "adapter": 4.0, "merged": 4.0, "int8": 1.3, "onnx": 4.0, "onnx-int8": 5.3,  # onnx-int8 writes fp32 first
    "gguf-f16": 2.0, "gguf-q8_0": 1.1, "gguf-q4_0": 0.7,
}  # fmt: skip
WEIGHT_FILES = (".safetensors", ".gguf", ".onnx", ".data", ".bin", ".pt")  # zipped without compression
MARKER = ".tuneboard-export"  # only folders carrying it are replaced by a new export


def formats_for(task: str) -> tuple[str, ...]:
    return TASK_FORMATS.get(model_task(task), ("merged",))


def export_run(
    database: Database,
    workspace: Workspace,
    run_id: int,
    fmt: str,
    out: str | Path | None = None,
    push_to: str | None = None,
) -> dict[str, Any]:
    """Write, check and record one export; returns its path, zip, size and verification figures."""
    from backend.runs.queue import get_run
    from backend.runs.results import model_folder

    if fmt not in FORMATS:
        raise ValueError(f"format '{fmt}' is not supported; choose one of {', '.join(FORMATS)}")
    run = get_run(database, run_id)  # "run N not found"
    if run.status != RunStatus.completed:
        why = f" ({run.reason.strip().splitlines()[-1][:200]})" if run.reason else ""
        raise ValueError(f"run {run_id} is {run.status.value}{why}; only a completed run can be exported")
    task = model_task((run.config or {}).get("task", "sft"))  # a DPO/GRPO policy exports as a chat model
    if fmt not in formats_for(task) and fmt != "adapter":  # a missing adapter is explained below
        raise ValueError(f"a {task} run exports as {', '.join(formats_for(task))}; '{fmt}' is for chat (sft) runs")
    if push_to:
        from backend.export.hub import check_can_push

        check_can_push(push_to)
    base, adapter, trusted = model_folder(database, workspace, run_id)
    if fmt == "adapter" and (adapter is None or task == "image-classification"):
        why = "its LoRA is merged into the saved network" if adapter else "it trained all weights"
        raise ValueError(f"run {run_id} has no separate adapter ({why}); export 'merged' instead")
    target = _target(workspace, run_id, fmt, out)
    try:
        _check_disk(target, _estimate_bytes(fmt, base, adapter))
        source = reward_source(adapter or base) if task == "reward" else load_source(task, base, adapter, trusted)
        rows = validation_rows(workspace, run) if task not in ("sft", "reward") else []
        from backend.export.formats import write_and_check

        try:
            with cpu.lease():  # the export's share of the cores while runs train (backend.cpu)
                verification = write_and_check(source, fmt, target, base, adapter, trusted, rows, run.name)
        except (ValueError, OSError, MemoryError):
            raise
        except Exception as e:  # an exporter or runtime failing on this model: one line for the user, trace in the log
            log.exception("%s export of run %s failed", fmt, run_id)
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise ValueError(
                f"{fmt} export of run {run_id} failed ({type(e).__name__}: {first}); nothing was kept"
            ) from e
    except BaseException:  # no half-written export to trip over (or to refuse next time), nor a record of the old one
        shutil.rmtree(target, ignore_errors=True)
        Path(f"{target}.zip").unlink(missing_ok=True)
        with database.session() as s:
            s.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.path == str(target)))
        raise
    from backend.export.card import write_card

    write_card(target, run, fmt, verification)  # README.md: settings, dataset, metrics, this check
    (target / MARKER).write_text(f"{fmt} export of run {run_id}\n")
    size = dir_size(target)
    verification["size_bytes"] = size
    archive = zip_folder(target)
    with database.session() as s:  # a re-export replaces the record of the folder it replaced
        s.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.path == str(target)))
        art = Artifact(run_id=run_id, kind=fmt, path=str(target), size_bytes=size, verification=verification)
        s.add(art)
    result = {
        "id": art.id,
        "run_id": run_id,
        "format": fmt,
        "path": str(target),
        "zip": str(archive),
        "size_bytes": size,
        "verification": verification,
    }
    if push_to:
        from backend.export.hub import push

        try:  # the verified export stays, and says the push failed
            result["pushed"] = push(target, push_to)
        except ValueError as e:
            result["push_error"] = str(e)
    return result


def zip_folder(folder: Path) -> Path:
    """FOLDER.zip beside it: weights stored as they are, the rest deflated. Deflating fp32 safetensors saves
    about 13% of their size for about 25 s of CPU per 540 MB (the merged SmolLM2: half the export's time);
    quantized weights barely shrink at all. Nothing half-written is left if it fails."""
    archive = folder.with_name(f"{folder.name}.zip")
    try:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                stored = path.suffix in WEIGHT_FILES
                zf.write(path, path.relative_to(folder), zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    return archive


def list_exports(database: Database, run_id: int) -> list[dict[str, Any]]:
    """Every verified export of a run (Artifact rows of an export format), newest first."""
    with database.session() as s:
        rows = s.scalars(
            select(Artifact)
            .where(Artifact.run_id == run_id, Artifact.kind.in_(FORMATS))
            .order_by(Artifact.created_at.desc(), Artifact.id.desc())
        ).all()
        return [
            {"format": a.kind, "path": a.path, "size_bytes": a.size_bytes, "verification": a.verification or {}}
            for a in rows
            if (a.verification or {}).get("ok")
        ]


def _target(workspace: Workspace, run_id: int, fmt: str, out: str | Path | None) -> Path:
    """The export folder: new, empty, or an earlier Tuneboard export (replaced). Never anything else."""
    target = Path(out).expanduser().resolve() if out else workspace.export_dir(run_id) / fmt
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {target} is a file; name a new or empty folder")
    if target.is_relative_to(workspace.root / "runs") or target.is_relative_to(workspace.root / "datasets"):
        raise ValueError(f"--out {target} is inside the workspace's runs or datasets; name another folder")
    if target.is_dir() and any(target.iterdir()):
        if not (target / MARKER).is_file():
            raise ValueError(f"--out {target} is not empty; name a new or empty folder")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _estimate_bytes(fmt: str, base: Path, adapter: Path | None) -> int:
    """Bytes the export and its zip will take: the source's fp32 weights scaled by the format, twice (zip)."""
    weights = sum(p.stat().st_size for p in base.glob("*.safetensors"))
    if adapter is not None:
        weights += sum(p.stat().st_size for p in adapter.glob("*.safetensors"))
    if fmt == "adapter":
        weights = sum(p.stat().st_size for p in adapter.glob("*.safetensors")) if adapter else weights
    return int(weights * BYTES_PER_WEIGHT[fmt] / 4.0 * 2) + 50_000_000


def _check_disk(target: Path, needed: int) -> None:
    free = shutil.disk_usage(target).free
    if free < needed:
        raise ValueError(
            f"not enough free disk for this export in {target}: it needs about {needed / 1e6:,.0f} MB "
            f"(the export and its zip), {free / 1e6:,.0f} MB are free; free some space or choose --out on another disk"
        )


def validation_rows(workspace: Workspace, run: Any) -> list[dict[str, Any]]:
    """The rows the run was scored on: the dataset's validation split, or the share training held out."""
    from backend.config import RunConfig
    from backend.data import load_rows
    from backend.tasks.classification import hold_out

    if run.dataset_id is None or not workspace.dataset_dir(run.dataset_id).is_dir():
        return []
    cfg = run.config or {}
    defaults = RunConfig.__dataclass_fields__
    ratio = cfg.get("val_ratio", defaults["val_ratio"].default)
    seed = cfg.get("seed", defaults["seed"].default)
    train, held = load_rows(workspace, run.dataset_id, "train"), load_rows(workspace, run.dataset_id, "validation")
    return hold_out(train, held, ratio, seed)[1][: ev.MAX_EVAL_ROWS]


def reward_source(folder: Path) -> Any:
    """A reward run's model as an export source: a sequence classifier with one score, checked on a chat."""
    from backend.export.sources import CHECK_PROMPT, Source
    from backend.tasks.grpo import load_reward_model

    model, tokenizer = load_reward_model(folder)
    chat = [*CHECK_PROMPT, {"role": "assistant", "content": "I am a helpful assistant."}]
    check = dict(tokenizer.apply_chat_template(chat, return_tensors="pt", return_dict=True))
    return Source("reward-model", model.float(), tokenizer, check, ["score"])
