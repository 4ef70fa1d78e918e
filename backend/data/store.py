"""Dataset rows in the database: find, list, their JSON shape, versions, duplicates and deletion.

A dataset is never changed in place: importing different content under a name that exists makes
version N+1 (named NAME-vN, parent = the latest version), so runs keep the exact rows they used.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.data.errors import DataError
from backend.workspace import Workspace
from db import Database, Dataset
from db.models import Run, RunStatus, Study, as_utc

ACTIVE = (RunStatus.queued, RunStatus.running)


def find_dataset(database: Database, name_or_id: str | int) -> Dataset:
    with database.session() as s:  # by name first: a name is what people type
        ds = s.scalar(select(Dataset).where(Dataset.name == str(name_or_id)))
        if ds is None and str(name_or_id).isdigit():
            ds = s.get(Dataset, int(name_or_id))
        if ds is None:
            raise ValueError(f"dataset '{name_or_id}' not found; add it first (Datasets tab or `datasets add`)")
        return ds


def list_datasets(database: Database) -> list[Dataset]:
    with database.session() as s:
        return list(s.scalars(select(Dataset).order_by(Dataset.id.desc())))


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    return {
        "id": ds.id,
        "name": ds.name,
        "task": ds.task,
        "format": ds.format,
        "num_rows": ds.num_rows,
        "columns": ds.columns,
        "splits": ds.splits,
        "source_file": ds.source_file,
        "sha256": ds.sha256,
        "version": ds.version,
        "parent_id": ds.parent_id,
        "stats": ds.stats,
        "created_at": as_utc(ds.created_at).isoformat() if ds.created_at else None,
    }


def same_content(s: Session, sha256: str) -> Dataset | None:
    return s.scalar(select(Dataset).where(Dataset.sha256 == sha256).order_by(Dataset.id))


def family(s: Session, base: str) -> list[Dataset]:
    """Every version of `base`: the dataset called base and those called base-vN, oldest first."""
    pattern = re.compile(rf"{re.escape(base)}-v\d+")
    rows = s.scalars(select(Dataset).where(Dataset.name.startswith(base, autoescape=True)).order_by(Dataset.id))
    return [d for d in rows if d.name == base or pattern.fullmatch(d.name)]


def version_name(base: str, version: int) -> str:
    return base if version == 1 else f"{base}-v{version}"


def base_name(wanted: str | None, fallback: str) -> str:
    """The name a person asked for, or one made from the file name; refused when unusable."""
    base = (wanted or "").strip() or re.sub(r"[^\w.-]+", "-", fallback).strip("-") or "dataset"
    if len(base) > 190:
        raise DataError("dataset name must be 1 to 190 characters")
    if base.isdigit():  # all digits would read as a dataset id
        if wanted:
            raise DataError(f"dataset name '{wanted}' is all digits, which reads as an id; add a letter")
        base = f"dataset-{base}"
    return base


def delete_dataset(database: Database, workspace: Workspace, name_or_id: str | int) -> dict[str, Any]:
    """Delete a dataset no queued or running run uses; finished runs keep their results but lose the link."""
    ds = find_dataset(database, name_or_id)
    with database.session() as s:
        active = list(s.scalars(select(Run.id).where(Run.dataset_id == ds.id, Run.status.in_(ACTIVE))))
        if active:
            ids = ", ".join(f"#{i}" for i in active)
            raise DataError(
                f"dataset '{ds.name}' is used by run(s) {ids} that are queued or running; "
                "cancel them or wait, then delete"
            )
        finished = list(s.scalars(select(Run.id).where(Run.dataset_id == ds.id)))
        s.execute(update(Run).where(Run.dataset_id == ds.id).values(dataset_id=None))
        s.execute(update(Study).where(Study.dataset_id == ds.id).values(dataset_id=None))
        s.execute(update(Dataset).where(Dataset.parent_id == ds.id).values(parent_id=None))
        s.delete(s.get(Dataset, ds.id))
    _remove_folder(workspace.dataset_dir(ds.id))
    note = (
        f"; {len(finished)} finished run(s) keep their results and metrics but can no longer be resumed"
        if finished
        else ""
    )
    return {
        "id": ds.id,
        "name": ds.name,
        "deleted": True,
        "detached_runs": finished,
        "message": f"deleted '{ds.name}'{note}",
    }


def _remove_folder(folder: Path) -> None:
    """Move the folder aside first, so a failure half way never leaves a half dataset under its id."""
    if not folder.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=".deleted-", dir=folder.parent))
    folder.rename(trash / folder.name)
    shutil.rmtree(trash, ignore_errors=True)
