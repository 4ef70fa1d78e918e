"""Task registry: each task module exposes the same `build(...) -> Built` (see backend/tasks/base.py)."""

from __future__ import annotations

from types import ModuleType

_TASKS = {"sft": "backend.tasks.causal_lm"}


def get_task(name: str) -> ModuleType:
    import importlib

    if name not in _TASKS:
        raise ValueError(f"task '{name}' is not available; choose one of {', '.join(_TASKS)}")
    return importlib.import_module(_TASKS[name])


__all__ = ["get_task"]
