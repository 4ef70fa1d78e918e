"""Dataset rows in the database: find by name or id, list, and their JSON shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from db import Database, Dataset
from db.models import as_utc


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
        "splits": ds.splits,
        "source_file": ds.source_file,
        "sha256": ds.sha256,
        "stats": ds.stats,
        "created_at": as_utc(ds.created_at).isoformat() if ds.created_at else None,
    }
