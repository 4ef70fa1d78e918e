"""A quick look at an upload before it is imported: the detected format and task, and the columns to map.

Only the first row is read, so the Datasets tab can offer the column-mapping step at once.
"""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from backend.data import alpaca
from backend.data.classification import LABEL_NAMES, PAIR_NAMES, TEXT_NAMES, guess_column
from backend.data.detect import TASK_OF, detect_format
from backend.data.errors import DataError
from backend.data.imagefolder import IMAGE_EXT
from backend.data.llamafactory import INFO
from backend.data.options import ImportLimits
from backend.data.tables import read_records


def inspect_upload(path: str | Path, limits: ImportLimits | None = None) -> dict[str, Any]:
    """{"format", "task", "columns", "text_column", "label_column", "text_pair_column", "note"} for an upload."""
    path = Path(path)
    limits = limits or ImportLimits()
    if path.suffix.lower() == ".zip" or path.is_dir():
        return _inspect_archive(path)
    first = next(itertools.islice(read_records(path, limits.max_row_chars), 1), (0, None))[1]
    columns = list(first) if isinstance(first, dict) else []
    try:
        fmt = detect_format(first, path.name)
    except DataError as e:
        if not columns:
            return _result("", columns, str(e))
        shown = ", ".join(f"'{c}'" for c in columns[:12])
        return _result(
            "",
            columns,
            f"{path.name}: format not recognised from the fields {shown}; pick the text and "
            "label columns below for text classification, or choose the format",
        )
    renamed = alpaca.columns_of(first) if fmt == "alpaca" else None
    read_as = "".join(f", {theirs} → {ours}" for ours, theirs in (renamed or {}).items() if theirs and theirs != ours)
    return _result(fmt, columns, f"{path.name} → {fmt} ({TASK_OF[fmt]}){read_as}")


def _result(fmt: str, columns: list[str], note: str) -> dict[str, Any]:
    mapped = fmt in ("classification", "text", "")  # "" = undetected: offer the mapping step
    text = guess_column(columns, TEXT_NAMES) if mapped else ""
    label = guess_column(columns, LABEL_NAMES, (text,)) if mapped and fmt != "text" else ""
    others = [c for c in columns if c != text]
    if not fmt and text and not label and len(others) == 1:  # review,stars: the one other column is the label
        label = others[0]
    pair = guess_column(columns, PAIR_NAMES, (text, label)) if mapped and fmt != "text" else ""
    return {
        "format": fmt,
        "task": TASK_OF.get(fmt, ""),
        "columns": columns,
        "text_column": text,
        "label_column": label,
        "text_pair_column": pair,
        "note": note,
    }


def _inspect_archive(path: Path) -> dict[str, Any]:
    if path.is_dir():
        names = [str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()]
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{path.name}: not a readable zip file ({e}); zip it again") from None
    if any(PurePosixPath(n).name == INFO for n in names):
        return _result(
            "llamafactory", [], f"{path.name} → a LLaMA-Factory folder; every entry of its {INFO} is imported"
        )
    images = sum(PurePosixPath(n).suffix.lower() in IMAGE_EXT for n in names)
    if images and images >= len(names) / 2:
        result = _result("imagefolder", [], f"{path.name} → {images} images (image classification)")
        return result | {"task": "image-classification"}
    return _result("", [], f"{path.name}: {len(names)} files; the format is detected from them at import")
