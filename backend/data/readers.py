"""Read a JSON array or JSON Lines file into records, with errors that name the file and line."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 2 * 1024**3  # uploads over 2 GB are refused before reading


class DataError(ValueError):
    """Bad input a user can fix; the message names the file, row or field and says what to do."""


def decode(path: Path) -> str:
    """Text of `path`: UTF-8 (with or without BOM) or UTF-16 with a BOM; anything else is refused."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path.name}: byte {e.start} is not valid UTF-8; save the file as UTF-8 (or UTF-16 with a BOM) and retry"
        ) from None


def read_records(path: Path) -> list[tuple[int, Any]]:
    """(row number, record) pairs. Row numbers are 1-based lines for JSONL, positions for a JSON array."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path.name}: {size / 1024**3:.1f} GB is over the 2 GB upload limit; split the file")
    text = decode(path)
    if not text.strip():
        raise DataError(f"{path.name}: the file is empty; it needs at least one example")
    try:
        return _read(path.name, text)
    except RecursionError:
        raise DataError(f"{path.name}: the JSON is nested too deeply to be a dataset") from None


def _read(name: str, text: str) -> list[tuple[int, Any]]:
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            if text.lstrip().startswith("{") and e.msg == "Extra data":
                data = None  # several objects: JSON Lines, read below line by line
            else:
                raise DataError(f"{name} line {e.lineno}: invalid JSON ({e.msg}); fix that line and retry") from None
        if isinstance(data, dict) and "\n" not in text.strip():
            return [(1, data)]  # JSON Lines with a single row
        if isinstance(data, dict):
            raise DataError(f"{name}: the file holds one JSON object; a dataset is an array of rows (or one per line)")
        if isinstance(data, list):
            if not data:
                raise DataError(f"{name}: the JSON array is empty; it needs at least one example")
            return list(enumerate(data, start=1))
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DataError(
                f"{name} line {lineno}: invalid JSON ({e.msg}); each line of a .jsonl file must be one JSON object"
            ) from None
    return records
