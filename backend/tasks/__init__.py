"""Task registry: each task module exposes the same `build(...) -> Built` (see backend/tasks/base.py).

A module may also offer `skeleton(cfg, model_dir) -> (model, layer_groups)`, a weightless model
that backend/runs/preflight.py checks settings against before a run is queued.
"""

from __future__ import annotations

from types import ModuleType

_TASKS = {
    "sft": "backend.tasks.causal_lm",
    "text-classification": "backend.tasks.text_classification",
    "image-classification": "backend.tasks.image_classification",
    # A run with a teacher: the data's task builds the student, this wraps its Trainer (takes the teacher too).
    "distill": "backend.compress.distill",
    # Preference and RL tuning on TRL's trainers (backend/alignment.py holds their settings).
    "dpo": "backend.tasks.preference",
    "orpo": "backend.tasks.preference",
    "kto": "backend.tasks.preference",
    "reward": "backend.tasks.preference",
    "grpo": "backend.tasks.grpo",
}


def get_task(name: str) -> ModuleType:
    import importlib

    if name not in _TASKS:
        raise ValueError(f"task '{name}' is not available; choose one of {', '.join(_TASKS)}")
    return importlib.import_module(_TASKS[name])


__all__ = ["get_task"]
