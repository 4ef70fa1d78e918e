"""Dataset actions: import (file, folder, zip, hub id), list, show (with token lengths), delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.config import RunConfig
from backend.services import Services


def add_datasets(
    services: Services,
    path: str | Path,
    name: str | None = None,
    options: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Import a file, folder, zip or hub id: one summary per dataset (a LLaMA-Factory folder gives several).

    `options` are ImportOptions fields (format, task, text_column, label_column, val_ratio, ...).
    Each summary says whether it was `created` or is an identical dataset already there (`duplicate_of`).
    """
    from backend.data import ImportOptions, dataset_summary, import_path

    opts = ImportOptions(**{k: v for k, v in (options or {}).items() if v not in (None, "")})
    results = import_path(services.database, services.workspace, path, name or None, opts, progress)
    return [
        {
            **dataset_summary(r.dataset),
            "created": r.created,
            "duplicate_of": r.duplicate_of,
            "message": r.message,
            "skipped": r.skipped,
        }
        for r in results
    ]


def add_dataset(services: Services, path: str | Path, name: str | None = None, fmt: str = "auto") -> dict[str, Any]:
    """Import one dataset file (the API's upload); see add_datasets for every option."""
    results = add_datasets(services, path, name, {"format": fmt})
    if len(results) != 1:
        raise ValueError(f"{Path(path).name} holds {len(results)} datasets; add it with `datasets add` instead")
    return results[0]


def delete_dataset(services: Services, dataset: str | int) -> dict[str, Any]:
    """Delete a dataset no queued or running run uses (finished runs keep their results)."""
    from backend.data import delete_dataset

    return delete_dataset(services.database, services.workspace, dataset)


def list_datasets(services: Services) -> list[dict[str, Any]]:
    from backend.data import dataset_summary, list_datasets

    return [dataset_summary(d) for d in list_datasets(services.database)]


def show_dataset(
    services: Services,
    dataset: str | int,
    rows: int = 5,
    split: str = "train",
    offset: int = 0,
    model: str = "",
    cutoff_len: int = 0,
) -> dict[str, Any]:
    """One dataset with a page of its rows; with `model`, token lengths under that model's tokenizer."""
    from backend.data import dataset_summary, find_dataset, preview
    from backend.data.preview import sample_rows
    from backend.data.stats import token_lengths

    ds = find_dataset(services.database, dataset)
    if split not in ds.splits:
        raise ValueError(f"dataset '{ds.name}' has no '{split}' split; it has {', '.join(ds.splits)}")
    out = {**dataset_summary(ds), "preview": preview(services.workspace, ds.id, offset, rows, split)}
    if model:
        cutoff = cutoff_len or RunConfig().cutoff_len
        data = sample_rows(services.workspace, ds.id, split)
        out["token_lengths"] = token_lengths(data, model, services.workspace.models_dir, cutoff)
    return out
