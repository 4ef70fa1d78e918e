"""Import a file as a dataset: detect, validate every row, convert, write Parquet, record a row.

Nothing is written unless every row is valid. Layout: workspace/datasets/ID/{train.parquet,original/FILE}.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from backend.data import alpaca
from backend.data.readers import DataError, read_records
from backend.workspace import Workspace
from db import Database, Dataset

FORMATS = ("auto", "alpaca")


def import_file(
    database: Database, workspace: Workspace, path: str | Path, name: str | None = None, fmt: str = "auto"
) -> Dataset:
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"format '{fmt}' is not supported; choose one of {', '.join(FORMATS)}")
    records = read_records(path)
    if fmt == "auto" and not alpaca.looks_like_alpaca(records[0][1]):
        raise DataError(
            f"{path.name}: could not detect the format; an Alpaca row looks like "
            '{"instruction": "...", "input": "", "output": "..."}'
        )
    rows = alpaca.to_messages(records, path.name)
    name = _free_name(database, name, path)

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stats = _stats(rows)
    with tempfile.TemporaryDirectory(dir=workspace.root / "datasets") as tmp:
        staged = Path(tmp) / "data"
        (staged / "original").mkdir(parents=True)
        shutil.copy2(path, staged / "original" / path.name)
        _write_parquet(rows, staged / "train.parquet")
        with database.session() as s:
            ds = Dataset(
                name=name,
                task="sft",
                format="alpaca",
                num_rows=len(rows),
                columns=["messages"],
                splits={"train": len(rows)},
                sha256=digest,
                source_file=path.name,
                stats=stats,
            )
            s.add(ds)
        target = workspace.dataset_dir(ds.id)
        try:
            shutil.rmtree(target, ignore_errors=True)
            staged.rename(target)
        except OSError:  # no folder, no row
            with database.session() as s:
                s.execute(delete(Dataset).where(Dataset.id == ds.id))
            raise
    return ds


def load_rows(workspace: Workspace, dataset_id: int, split: str = "train") -> list[dict[str, Any]]:
    """The canonical rows of one split of a dataset, as written at import; [] when it has no such split."""
    import pyarrow.parquet as pq

    path = workspace.dataset_dir(dataset_id) / f"{split}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def _write_parquet(rows: list[dict[str, Any]], target: Path) -> None:
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(str(target))


def _free_name(database: Database, wanted: str | None, path: Path) -> str:
    base = (wanted or re.sub(r"[^\w.-]+", "-", path.stem)).strip()
    if not base or len(base) > 200:
        raise DataError("dataset name must be 1 to 200 characters")
    if base.isdigit():  # all digits would read as a dataset id
        if wanted:
            raise DataError(f"dataset name '{wanted}' is all digits, which reads as an id; add a letter")
        base = f"dataset-{base}"
    with database.session() as s:
        taken = set(s.scalars(select(Dataset.name)))
    if wanted:
        if wanted in taken:
            raise DataError(f"a dataset named '{wanted}' already exists; choose another --name")
        return wanted
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    prompt_chars = [sum(len(m["content"]) for m in r["messages"] if m["role"] != "assistant") for r in rows]
    answer_chars = [len(r["messages"][-1]["content"]) for r in rows]
    keys = [json.dumps(r["messages"], ensure_ascii=False, sort_keys=True) for r in rows]
    return {
        "mean_prompt_chars": round(sum(prompt_chars) / len(rows), 1),
        "mean_answer_chars": round(sum(answer_chars) / len(rows), 1),
        "max_chars": max(p + a for p, a in zip(prompt_chars, answer_chars, strict=True)),
        "multi_turn_rows": sum(len(r["messages"]) > 3 for r in rows),
        "duplicate_rows": len(keys) - len(set(keys)),
    }
