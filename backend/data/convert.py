"""One upload (file, folder, zip, or hub id) -> converted datasets: format, task and canonical rows per split.

Nothing here writes outside the staging folder it is given; every row is validated on the way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.data import alpaca, classification, imagefolder, llamafactory, messages, preference, sharegpt, text
from backend.data.detect import detect_format, split_of, task_of
from backend.data.errors import DataError
from backend.data.options import ImportOptions
from backend.data.readers import Progress, Records
from backend.data.tables import is_data_file, read_records
from backend.data.zipsafe import is_junk, safe_extract


@dataclass
class Converted:
    """One dataset, converted but not yet stored."""

    name_hint: str
    fmt: str
    task: str
    splits: dict[str, list[dict[str, Any]]]
    source: str  # what the person gave: a file name, folder, zip or hub id
    originals: list[Path] = field(default_factory=list)  # copied into original/
    mapping: dict[str, str] = field(default_factory=dict)  # columns a person or the detector chose
    invalid: list[str] = field(default_factory=list)  # rows left out (skip_invalid), each with its problem


def convert_upload(
    path: Path, opts: ImportOptions, staging: Path, progress: Progress | None = None
) -> tuple[list[Converted], list[str]]:
    """(datasets, notes about skipped parts) for a file, folder or zip on disk."""
    source = path.name
    if path.suffix.lower() == ".zip":
        root = staging / "unzipped"
        root.mkdir()
        files = safe_extract(path, root, opts.limits)
        originals = [path]
    elif path.is_dir():
        root = path
        files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
        if not files:
            raise DataError(f"{source}: the folder holds no files")
        originals = [path]
    else:
        return [_convert_files(path.stem, {"train": [path]}, opts, source, [path], progress)], []

    info = min((f for f in files if f.name == llamafactory.INFO), key=lambda f: len(f.parts), default=None)
    if opts.format == "llamafactory" or (opts.format == "auto" and info is not None):
        if info is None:
            raise DataError(f"{source}: no {llamafactory.INFO} inside; LLaMA-Factory data folders have one")
        return _convert_llamafactory(root / info.parent, source, opts, progress)
    data_files = [f for f in files if is_data_file(f)]
    if (
        opts.format == "imagefolder"
        or opts.task == "image-classification"
        or (opts.format == "auto" and imagefolder.looks_like(files))
    ):
        splits = imagefolder.convert(root, files, source, opts.limits, opts.file_column, opts.label_column, progress)
        return [
            Converted(path.stem, "imagefolder", task_of("imagefolder", opts.task, source), splits, source, originals)
        ], []
    if not data_files:
        raise DataError(f"{source}: no dataset files inside (.json, .jsonl, .csv, .tsv, .parquet, .txt or images)")
    by_split: dict[str, list[Path]] = {}
    named = {f: split_of(f) for f in data_files}
    use_names = "train" in named.values()
    for f in data_files:
        by_split.setdefault(named[f] if use_names and named[f] else "train", []).append(root / f)
    return [_convert_files(path.stem, by_split, opts, source, originals, progress)], []


def _hidden(rel: Path) -> bool:
    return is_junk(str(rel)) or any(p.startswith(".") for p in rel.parts)


def _convert_files(
    name_hint: str,
    by_split: dict[str, list[Path]],
    opts: ImportOptions,
    source: str,
    originals: list[Path],
    progress: Progress | None,
) -> Converted:
    """Every file of every split in one format (detected from the first file's first row)."""
    fmt, mapping, splits, invalid = "", {}, {}, _invalid(opts)
    for split, paths in by_split.items():
        for path in paths:
            records = read_records(path, opts.limits.max_row_chars, progress, invalid)
            fmt, mapping, rows = _convert_records(records, path.name, opts, fmt, mapping, invalid)
            splits.setdefault(split, []).extend(rows)
    task = task_of(fmt, opts.task, source)
    return Converted(name_hint, fmt, task, splits, source, originals, mapping, invalid or [])


def _invalid(opts: ImportOptions) -> list[str] | None:
    """Where converters put the rows they leave out: a list with skip_invalid, else None (a bad row stops it all)."""
    return [] if opts.skip_invalid else None


def convert_hub(repo: str, opts: ImportOptions, progress: Progress | None = None) -> Converted:
    from backend.data import hub

    fmt, mapping, splits, invalid = "", {}, {}, _invalid(opts)
    for split, records in hub.load(repo, opts.subset, opts.split).items():
        at = f"{hub.strip(repo)} ({split})"
        fmt, mapping, splits[split] = _convert_records(records, at, opts, fmt, mapping, invalid)
    name = hub.strip(repo).split("/")[-1] + (f"-{opts.subset}" if opts.subset else "")
    return Converted(name, fmt, task_of(fmt, opts.task, repo), splits, hub.strip(repo), [], mapping, invalid or [])


def _convert_records(
    records: Records,
    file_name: str,
    opts: ImportOptions,
    fmt: str,
    mapping: dict[str, str],
    invalid: list[str] | None,
) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """(format, column mapping, canonical rows); `fmt`/`mapping` from an earlier file of the same upload, if any."""
    first, records = _peek(records, file_name)
    if not fmt:
        fmt = (
            opts.format
            if opts.format != "auto"
            else detect_format(first, file_name, opts.task, opts.text_column, opts.label_column)
        )
    limit = opts.limits.max_row_chars
    if fmt == "classification":
        if not mapping:
            columns = list(first) if isinstance(first, dict) else []
            t, lab, pair = classification.resolve_columns(
                columns, file_name, opts.text_column, opts.label_column, opts.text_pair_column
            )
            mapping = {"text": t, "label": lab} | ({"text_pair": pair} if pair else {})
        rows = classification.convert(
            records, file_name, limit, mapping["text"], mapping["label"], mapping.get("text_pair", ""), invalid
        )
    elif fmt == "text":
        mapping = mapping or {"text": opts.text_column or "text"}
        rows = text.convert(records, file_name, limit, mapping["text"], invalid)
    elif fmt == "alpaca":
        mapping = mapping or alpaca.columns_of(first) or {}
        rows = alpaca.convert(records, file_name, limit, mapping, invalid)
    elif fmt == "sharegpt":
        rows = sharegpt.convert(records, file_name, limit, invalid=invalid)
    elif fmt == "messages":
        rows = messages.convert(records, file_name, limit, invalid=invalid)
    elif fmt in preference.FORMATS:
        rows = preference.convert(records, fmt, file_name, limit, invalid=invalid)
    else:
        raise DataError(f"{file_name}: format '{fmt}' needs a zip or folder, not a single file")
    return fmt, mapping, list(rows)


def _peek(records: Records, file_name: str) -> tuple[Any, Iterator[tuple[int, Any]]]:
    it = iter(records)
    try:
        row, first = next(it)
    except StopIteration:
        raise DataError(f"{file_name}: the file has no rows; it needs at least one example") from None
    return first, itertools.chain([(row, first)], it)


def _convert_llamafactory(
    root: Path, source: str, opts: ImportOptions, progress: Progress | None
) -> tuple[list[Converted], list[str]]:
    entries, skipped = llamafactory.read_info(root)
    out = []
    limit = opts.limits.max_row_chars
    for entry in entries:
        splits: dict[str, list[dict[str, Any]]] = {"train": []}
        invalid = _invalid(opts)
        for rel in entry.files:
            path = root / rel
            records = read_records(path, limit, progress, invalid)
            at = f"{entry.name}: {rel}"
            if entry.formatting == "sharegpt":
                rows = sharegpt.convert(records, at, limit, entry.columns, entry.tags, invalid)
            elif entry.formatting in preference.FORMATS:
                rows = preference.convert(records, entry.formatting, at, limit, entry.columns, entry.tags, invalid)
            elif entry.formatting == "text":
                rows = text.convert(records, at, limit, entry.columns["text"], invalid)
            else:
                rows = alpaca.convert(records, at, limit, entry.columns, invalid)
            splits["train"].extend(rows)
        fmt = entry.formatting
        originals = [root / llamafactory.INFO, *(root / f for f in entry.files)]
        task = task_of(fmt, opts.task, entry.name)
        out.append(Converted(entry.name, fmt, task, splits, f"{source}:{entry.name}", originals, {}, invalid or []))
    return out, skipped
