"""Image classification from a folder (an unpacked zip) -> canonical rows: `image` bytes, `label`, `file`.

Two layouts: class folders (cat/1.jpg, dog/2.png; optionally under train/ validation/ test/), or
images plus one CSV naming each file and its label. Every image is opened with PIL before
anything is written; files that are not readable images are listed in the error.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.data.classification import LABEL_NAMES, guess_column, label_text
from backend.data.errors import DataError
from backend.data.options import SPLIT_ALIASES, ImportLimits
from backend.data.tables import read_csv

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DOC_NAMES = {"readme", "license", "licence", "citation"}
FILE_NAMES = ("file", "filename", "file_name", "image", "image_path", "path", "img", "name", "id")
SHOWN = 10  # bad files named in one error


def looks_like(files: list[Path]) -> bool:
    images = sum(f.suffix.lower() in IMAGE_EXT for f in files)
    return images > 0 and images >= len(files) / 2


def convert(
    root: Path,
    files: list[Path],
    source: str,
    limits: ImportLimits,
    file_column: str = "",
    label_column: str = "",
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Rows per split ("train" unless the folders name splits)."""
    prefix, files = _strip_common_root(files)
    root = root / prefix
    csvs = [f for f in files if f.suffix.lower() in (".csv", ".tsv")]
    if len(csvs) > 1:
        raise DataError(f"{source}: {len(csvs)} CSV files ({', '.join(map(str, csvs[:3]))}); keep one file-label CSV")
    labelled = _from_csv(root, csvs[0], files, source, limits, file_column, label_column) if csvs else None
    splits: dict[str, list[dict[str, Any]]] = {}
    bad: list[str] = []
    images = [f for f in files if f not in csvs]
    for i, rel in enumerate(images):
        if progress and i % 200 == 0:
            progress(i / len(images), f"checking images: {i:,} of {len(images):,}")
        if rel.suffix.lower() not in IMAGE_EXT:
            if not (len(rel.parts) == 1 and rel.stem.lower() in DOC_NAMES):
                bad.append(f"{rel} (not an image)")
            continue
        split, label = _place(rel, labelled)
        if label is None:
            bad.append(f"{rel} ({'not listed in the CSV' if labelled is not None else 'not inside a class folder'})")
            continue
        data = (root / rel).read_bytes()
        problem = _check_image(data, limits)
        if problem:
            bad.append(f"{rel} ({problem})")
            continue
        splits.setdefault(split, []).append({"image": data, "label": label, "file": str(rel)})
    if bad:
        listed = "; ".join(bad[:SHOWN]) + (f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else "")
        raise DataError(f"{source}: {len(bad)} file(s) cannot be used: {listed}. Remove or fix them and retry")
    if not splits:
        raise DataError(f"{source}: no images found; put them in one folder per class (cat/1.jpg, dog/2.jpg)")
    return splits


def _strip_common_root(files: list[Path]) -> tuple[Path, list[Path]]:
    """zip -r of a folder puts everything under one top folder; drop it so class folders come first.

    A lone top folder with images right inside is a class (a one-class zip), not a wrapper.
    """
    prefix = Path()
    while True:
        tops = {f.parts[0] for f in files if len(f.parts) > 1}
        if len(tops) != 1 or any(len(f.parts) == 1 for f in files) or all(len(f.parts) < 3 for f in files):
            break
        top = tops.pop()
        if SPLIT_ALIASES.get(top.lower()):
            break
        prefix /= top
        files = [Path(*f.parts[1:]) for f in files]
    return prefix, files


def _place(rel: Path, labelled: dict[str, str] | None) -> tuple[str, str | None]:
    parts = rel.parts
    split = SPLIT_ALIASES.get(parts[0].lower()) if len(parts) > 2 else None
    inner = parts[1:] if split else parts
    if labelled is not None:
        return split or "train", labelled.get(str(rel)) or labelled.get(rel.name)
    return split or "train", (inner[0] if len(inner) > 1 else None)


def _from_csv(
    root: Path, csv_rel: Path, files: list[Path], source: str, limits: ImportLimits, file_col: str, label_col: str
) -> dict[str, str]:
    records = list(read_csv(root / csv_rel, limits.max_row_chars))
    columns = list(records[0][1])
    file_col = file_col or guess_column(columns, FILE_NAMES)
    label_col = label_col or guess_column(columns, LABEL_NAMES, (file_col,))
    for col, what, flag in ((file_col, "file name", "--file-column"), (label_col, "label", "--label-column")):
        if not col or col not in columns:
            raise DataError(f"{csv_rel}: no {what} column among {', '.join(columns)}; choose one with {flag}")
    known = {str(f) for f in files} | {f.name for f in files}
    labels: dict[str, str] = {}
    for row, record in records:
        name = record[file_col].strip().lstrip("./")
        if not name:
            raise DataError(f"{csv_rel} row {row}: field '{file_col}' is empty; name the image file")
        if name not in known:
            raise DataError(f"{csv_rel} row {row}: image '{name}' is not in the zip; fix the name or add the file")
        labels[name], _ = label_text(record[label_col], f"{csv_rel} row {row}: field '{label_col}'")
    return labels


def _check_image(data: bytes, limits: ImportLimits) -> str:
    """ "" when PIL can read the image; otherwise what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Image.DecompressionBombError:
        return "too many pixels"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"unreadable: {str(e)[:60]}" if str(e) else "unreadable"
    return ""
