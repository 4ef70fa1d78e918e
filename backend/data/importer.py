"""Import an upload as one or more datasets: convert and validate everything, then store it all at once.

Layout: workspace/datasets/ID/{train,validation,test}.parquet (the splits that exist) + original/.
Everything is staged in a temporary folder under workspace/datasets and renamed into place only
after every row of every file is valid; the database is touched only at the end, briefly.

    import_path(database, workspace, "data.zip", name="reviews", options=ImportOptions(label_column="stars"))
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from backend.data import canonical, hub, splits, store
from backend.data.classification import check_classes
from backend.data.convert import Converted, convert_hub, convert_upload
from backend.data.errors import DataError
from backend.data.options import CLASSIFIER_TASKS, ImportOptions
from backend.data.readers import Progress
from backend.data.stats import import_stats
from backend.workspace import Workspace
from db import Database, Dataset

log = logging.getLogger(__name__)
INVALID_SHOWN = 20  # problems of left-out rows kept on the dataset (all are counted)


@dataclass
class Imported:
    """One dataset an import produced, or found already there (created False, duplicate_of set)."""

    dataset: Dataset
    created: bool
    message: str
    duplicate_of: int | None = None
    skipped: list[str] = field(default_factory=list)  # parts of the upload left out, with the reason


@dataclass
class _Ready:
    conv: Converted
    columns: list[str]
    sha256: str
    stats: dict[str, Any]
    staged: Path


def import_file(
    database: Database,
    workspace: Workspace,
    path: str | Path,
    name: str | None = None,
    fmt: str = "auto",
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import one dataset (the common case); a folder holding several is refused: use import_path."""
    opts = options or ImportOptions(format=fmt)
    results = import_path(database, workspace, path, name, opts, progress)
    if len(results) != 1:
        raise DataError(
            f"{Path(path).name} holds {len(results)} datasets; import it with import_path (CLI: datasets add)"
        )
    return results[0].dataset


def import_path(
    database: Database,
    workspace: Workspace,
    path: str | Path,
    name: str | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> list[Imported]:
    """Import a file, folder, zip or hub id: one Imported per dataset, or a DataError and nothing written."""
    opts = options or ImportOptions()
    path_text = str(path).strip()
    if not path_text:
        raise DataError("no file given; choose a file, a folder, a zip or a hub id")
    local = Path(path_text).expanduser()
    root = workspace.root / "datasets"
    reading = (lambda f, what: progress(0.85 * f, what)) if progress else None  # the last 15%: checks and writing
    with tempfile.TemporaryDirectory(dir=root, prefix=".import-") as tmp:
        staging = Path(tmp)
        if local.exists():
            _check_size(local, opts)
            converted, skipped = convert_upload(local, opts, staging, reading)
        elif hub.is_hub_id(path_text):
            converted, skipped = [convert_hub(path_text, opts, reading)], []
        else:
            raise DataError(f"{path_text}: no such file or folder")
        if name and len(converted) > 1:
            raise DataError(
                f"{local.name} holds {len(converted)} datasets; --name only fits one (they keep their own names)"
            )
        if progress:
            progress(0.9, "checking and writing")
        ready = [_prepare(c, opts, staging / f"ds{i}") for i, c in enumerate(converted)]
        for attempt in range(3):  # two imports naming the same dataset at once: the later one becomes the next version
            try:
                results = _commit(database, workspace, ready, name)
                break
            except IntegrityError:
                if attempt == 2:
                    raise DataError("other imports keep taking the same name at this moment; import again") from None
    for note in skipped:
        log.warning("skipped %s", note)
    for r in results:
        r.skipped = skipped
    if progress:
        progress(1.0, "done")
    return results


def _check_size(path: Path, opts: ImportOptions) -> None:
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    limit = opts.limits.max_upload_bytes
    if size > limit:
        raise DataError(
            f"{path.name}: {size / 1024**2:,.0f} MB is over the {limit / 1024**2:,.0f} MB upload limit; "
            "split it, or raise TUNEBOARD_MAX_UPLOAD_MB"
        )


def _prepare(conv: Converted, opts: ImportOptions, staged: Path) -> _Ready:
    """Duplicates, classes, splits, statistics and the content hash; Parquet files staged under `staged`."""
    if conv.invalid and not any(conv.splits.values()):
        raise DataError(
            f"{conv.source}: every row has a problem, so none is left to import; the first: {conv.invalid[0]}"
        )
    prints = {k: [canonical.fingerprint(r) for r in rows] for k, rows in conv.splits.items()}
    seen: set[bytes] = set()
    duplicates = 0
    for split in sorted(conv.splits, key=lambda s: ("train", "validation", "test").index(s)):
        keep = []
        for row, fp in zip(conv.splits[split], prints[split], strict=True):
            dup = fp in seen
            duplicates += dup
            seen.add(fp)
            if not (dup and opts.drop_duplicates):
                keep.append((row, fp))
        conv.splits[split] = [r for r, _ in keep]
        prints[split] = [fp for _, fp in keep]
    dropped = duplicates if opts.drop_duplicates else 0
    if conv.task in CLASSIFIER_TASKS:
        check_classes([r["label"] for part in conv.splits.values() for r in part], conv.source)
    if set(conv.splits) == {"train"}:
        val, test = opts.ratios(conv.task)
        if val or test:
            by_row = {id(r): fp for r, fp in zip(conv.splits["train"], prints["train"], strict=True)}
            stratify = conv.task in CLASSIFIER_TASKS
            conv.splits = splits.split_rows(conv.splits["train"], val, test, opts.seed, stratify, conv.source)
            prints = {k: [by_row[id(r)] for r in rows] for k, rows in conv.splits.items()}
    if not conv.splits.get("train"):
        raise DataError(f"{conv.source}: the train split is empty; it needs at least one row")
    rows = [r for part in conv.splits.values() for r in part]
    columns = canonical.columns_of(rows)
    stats = import_stats(conv.task, conv.splits, duplicates, dropped) | {"columns_used": conv.mapping}
    if conv.invalid:  # how many rows were left out, and the first problems to show
        stats |= {"invalid_rows": len(conv.invalid), "invalid_examples": conv.invalid[:INVALID_SHOWN]}
    (staged / "original").mkdir(parents=True)
    for original in conv.originals:
        copy = shutil.copytree if original.is_dir() else shutil.copy2
        copy(original, staged / "original" / original.name)
    for split, part in conv.splits.items():
        if part:
            canonical.write_parquet(part, columns, staged / f"{split}.parquet")
    return _Ready(conv, columns, canonical.content_hash(conv.task, prints), stats, staged)


def _commit(database: Database, workspace: Workspace, ready: list[_Ready], wanted: str | None) -> list[Imported]:
    """Record every dataset in one transaction, then move the staged folders into place."""
    results: list[Imported] = []
    new: list[tuple[Dataset, Path]] = []
    with database.session() as s:
        for r in ready:
            base = store.base_name(wanted, r.conv.name_hint)
            same = store.same_content(s, r.sha256)
            versions = store.family(s, base)
            if same is not None and (not wanted or same in versions):
                msg = f"identical to dataset '{same.name}' (id {same.id}); nothing imported, use '{same.name}'"
                results.append(Imported(same, False, msg, duplicate_of=same.id))
                continue
            version = max((d.version for d in versions), default=0) + 1
            ds = Dataset(
                name=store.version_name(base, version),
                task=r.conv.task,
                format=r.conv.fmt,
                num_rows=sum(len(p) for p in r.conv.splits.values()),
                columns=r.columns,
                splits={k: len(v) for k, v in r.conv.splits.items() if v},
                sha256=r.sha256,
                source_file=r.conv.source[:500],
                stats=r.stats | ({"duplicate_of": {"id": same.id, "name": same.name}} if same else {}),
                version=version,
                parent_id=versions[-1].id if versions else None,
            )
            s.add(ds)
            s.flush()
            new.append((ds, r.staged))
            results.append(Imported(ds, True, _message(ds, same, versions)))
    moved: list[Path] = []
    try:
        for ds, staged in new:
            target = workspace.dataset_dir(ds.id)
            shutil.rmtree(target, ignore_errors=True)  # a leftover of a deleted row with the same id
            staged.rename(target)
            moved.append(target)
    except OSError:  # no folder, no row
        with database.session() as s:
            s.execute(delete(Dataset).where(Dataset.id.in_([ds.id for ds, _ in new])))
        for target in moved:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return results


def _message(ds: Dataset, same: Dataset | None, versions: list[Dataset]) -> str:
    parts = [f"Imported {ds.name} ({ds.num_rows:,} rows, {', '.join(f'{k} {v:,}' for k, v in ds.splits.items())})"]
    if versions:
        parts.append(f"version {ds.version} of '{versions[0].name}' (earlier versions are kept unchanged)")
    if same is not None:
        parts.append(f"same content as dataset '{same.name}' (id {same.id})")
    if ds.stats.get("duplicate_rows"):
        n = ds.stats["duplicate_rows"]
        parts.append(f"{n} duplicate row(s) {'dropped' if ds.stats.get('dropped_duplicates') else 'found'}")
    if ds.stats.get("invalid_rows"):
        parts.append(
            f"{ds.stats['invalid_rows']:,} row(s) with problems left out, e.g. {ds.stats['invalid_examples'][0]}"
        )
    return "; ".join(parts)


def load_rows(workspace: Workspace, dataset_id: int, split: str = "train") -> list[dict[str, Any]]:
    """The canonical rows of one split of a dataset, as written at import; [] when it has no such split."""
    import pyarrow.parquet as pq

    path = workspace.dataset_dir(dataset_id) / f"{split}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []
