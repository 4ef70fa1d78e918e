"""Kinds of long work, besides runs, that the supervisor advances on every tick.

A hyperparameter search is one today; downloads, evaluations and compressions plug in the same way: a
table whose rows carry a `status` (queued -> running -> completed / failed / stopped / cancelled), and
a function that moves every live row of that table one step on. The supervisor looks at each kind's
table with one cheap query and imports the kind's module only while a job of that kind is live, so it
never imports the capabilities built on top of it (no import circle, and a `supervise` process stays
light until a search starts).

    register(JobKind("evaluation", Evaluation, "backend.evaluate.driver:advance_evaluations"))
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from backend.workspace import Workspace
from db import Database, Download, Evaluation, Study

log = logging.getLogger(__name__)

LIVE = ("queued", "running")  # a job of any kind is live (the supervisor advances it) in these states


@dataclass(frozen=True)
class JobKind:
    name: str
    table: Any  # a db model with `id` and `status` columns
    advance: str  # "module:function", called as function(database, workspace) while a job is live


KINDS: list[JobKind] = [
    JobKind("search", Study, "backend.search.driver:advance_studies"),
    JobKind("download", Download, "backend.models.downloads:advance_downloads"),
    JobKind("evaluation", Evaluation, "backend.evaluate.driver:advance_evaluations"),
]


def register(kind: JobKind) -> None:
    """Add a kind of job for every supervisor in this process (a kind with the same name is replaced)."""
    KINDS[:] = [k for k in KINDS if k.name != kind.name] + [kind]


def advance_live(database: Database, workspace: Workspace) -> bool:
    """One step of every kind that has a live job; a failing kind is logged and the others go on.
    True when any job was live (the supervisor stays awake)."""
    any_live = False
    for kind in list(KINDS):
        with database.session() as s:
            live = s.scalar(select(kind.table.id).where(kind.table.status.in_(LIVE)).limit(1))
        if live is None:
            continue
        any_live = True
        module, function = kind.advance.split(":")
        try:
            getattr(importlib.import_module(module), function)(database, workspace)
        except Exception:
            log.exception("advancing %s jobs failed", kind.name)
    return any_live
