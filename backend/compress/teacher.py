"""What a distillation run asks for, checked before it is queued: `--task distill` becomes the data's
task, the teacher must be a completed run of that task, and a chat student must share the teacher's
tokenizer (nothing is written on a refusal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.config import ADAPTERS, CLASSIFIERS
from backend.workspace import Workspace
from db import Database, RunStatus


def distill_settings(database: Database, workspace: Workspace, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with task 'distill' resolved to the dataset's task and, with layers_from_teacher, the
    teacher's model as the student's; refuses a teacher that is missing, not completed or of another task."""
    teacher = int(settings.get("teacher") or 0)
    if settings.get("task") != "distill" and not teacher:
        return settings
    from backend.data import find_dataset
    from backend.runs.queue import get_run
    from backend.runs.results import model_folder

    if not teacher:
        raise ValueError("setting 'teacher' is 0: distillation needs a completed teacher run (--teacher RUN)")
    ds = find_dataset(database, settings.get("dataset") or "")
    task = ds.task if settings.get("task") in ("distill", None, "") else settings["task"]
    run = get_run(database, teacher)  # "run N not found"
    if run.status != RunStatus.completed:
        raise ValueError(f"setting 'teacher': run {teacher} is {run.status.value}; choose a completed run")
    if run.task != task:
        raise ValueError(
            f"setting 'teacher': run {teacher} is a {run.task} run but dataset '{ds.name}' is {task}; "
            f"choose a teacher trained on {task} data"
        )
    if task not in (*CLASSIFIERS, "sft"):
        raise ValueError(f"setting 'teacher' distils chat (sft) runs and classifiers, not {task} runs")
    base, adapter, trusted = model_folder(database, workspace, teacher)  # its saved model is still on disk
    out = {**settings, "task": task}
    if int(settings.get("layers_from_teacher") or 0):
        if task == "image-classification":
            raise ValueError(
                "setting 'layers_from_teacher' thins transformer models; for images choose a smaller "
                "--model (resnet18, mobilenet_v3_small)"
            )
        out["model"] = run.model  # the student is the teacher's network with fewer layers
        if task == "sft":  # its thinned layers are new weights: trained in full (an adapter needs a saved base)
            if out.get("method") in ADAPTERS:
                raise ValueError(
                    f"setting 'method': {out['method']} trains an adapter on a saved base model, but a student thinned "
                    "from its teacher (layers_from_teacher) has none; choose method full or freeze (--method full)"
                )
            out["method"] = out.get("method") or "full"
    elif task == "sft" and not out.get("sequence_level"):  # learning its answers needs no shared tokenizer
        from backend.models.catalog import BUNDLED, is_materialized, resolve_model

        student = out.get("model") or run.model
        if not (student in BUNDLED and not is_materialized(student, workspace.models_dir)):
            folder = resolve_model(student, workspace.models_dir, bool(out.get("trust_remote_code")))
            same_tokenizer(adapter or base, folder, trusted, teacher, student)
    return out


def same_tokenizer(teacher_dir: Path, student_dir: Path, code: bool, teacher: int, student: str) -> None:
    """Token-level distillation compares the two models' distributions token by token: refused unless
    both split text into the same tokens with the same ids."""
    from transformers import AutoTokenizer

    ours = AutoTokenizer.from_pretrained(student_dir, trust_remote_code=code).get_vocab()
    theirs = AutoTokenizer.from_pretrained(teacher_dir, trust_remote_code=code).get_vocab()
    if ours != theirs:
        differ = len(set(ours.items()) ^ set(theirs.items()))
        raise ValueError(
            f"setting 'model': student {student} does not share teacher run {teacher}'s tokenizer "
            f"({len(ours)} vs {len(theirs)} tokens, {differ} entries differ); token-level distillation needs the "
            "same tokenizer: choose a student of the teacher's family, or --layers-from-teacher K"
        )
