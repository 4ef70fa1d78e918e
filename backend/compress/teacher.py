"""What a distillation run asks for, checked before it is queued: `--task distill` becomes the data's
task, and the teacher must be a completed run of that task (nothing is written on a refusal)."""

from __future__ import annotations

from typing import Any

from backend.config import CLASSIFIERS
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
    if task not in CLASSIFIERS:
        raise ValueError("setting 'teacher' distils classifiers only (text or image); chat distillation is not built")
    model_folder(database, workspace, teacher)  # its saved model is still on disk
    out = {**settings, "task": task}
    if int(settings.get("layers_from_teacher") or 0):
        if task != "text-classification":
            raise ValueError(
                "setting 'layers_from_teacher' thins transformer text classifiers; for images choose a smaller "
                "--model (resnet18, mobilenet_v3_small)"
            )
        out["model"] = run.model  # the student is the teacher's network with fewer layers
    return out
