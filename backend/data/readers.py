"""Read JSON, JSON Lines and text files into (row number, record) pairs, with errors that name the line.

Encodings: UTF-8 (with or without BOM) and UTF-16 (BOM, or the zero bytes of plain ASCII text);
anything else is refused with the byte and line where decoding failed. JSON Lines files are read
line by line, so a 100 MB file never sits in memory as one string.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backend.data.errors import DataError
from backend.data.validation import check_row_size, leave_out

Progress = Callable[[float, str], None]
Records = Iterator[tuple[int, Any]]
UTF16 = "utf-16"


def sniff_encoding(path: Path) -> str:
    """utf-8 or utf-16, from the first bytes: a BOM, or ASCII with zero bytes in between."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UTF16
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
        return "utf-16-be"
    return "utf-8"


def decode(path: Path) -> str:
    """The whole text of a (small) file, with a clear error for a wrong encoding."""
    encoding = sniff_encoding(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(_encoding_message(path.name, line, e.start, encoding)) from None


def _encoding_message(name: str, line: int, byte: int, encoding: str) -> str:
    what = "UTF-8" if encoding == "utf-8" else "UTF-16"
    return f"{name} line {line}: byte {byte} is not valid {what}; save the file as UTF-8 (or UTF-16) and retry"


def iter_lines(path: Path) -> Iterator[tuple[int, str, int]]:
    """(line number, text, bytes read so far) for every line, decoding one line at a time."""
    encoding = sniff_encoding(path)
    if encoding != "utf-8":  # UTF-16 lines cannot be split on b"\n"; these files are rare and small
        for lineno, line in enumerate(decode(path).splitlines(), start=1):
            yield lineno, line, 0
        return
    done = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            start = done
            done += len(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(_encoding_message(path.name, lineno, start + e.start, encoding)) from None
            if lineno == 1:
                text = text.removeprefix("\ufeff")
            yield lineno, text.rstrip("\r\n"), done


def read_json_records(
    path: Path, max_row_chars: int, progress: Progress | None = None, invalid: list[str] | None = None
) -> Records:
    """Rows of a JSON array, a JSON Lines file, or an object holding one list of rows."""
    first = _first_char(path)
    if first == "":
        raise DataError(f"{path.name}: the file is empty; it needs at least one example")
    if first == "[":
        return iter(_whole(path))
    if first != "{":
        raise DataError(
            f"{path.name} line 1: this is not JSON (it starts with {first!r}); "
            "a dataset is a JSON array of rows or one JSON object per line"
        )
    return _json_lines(path, max_row_chars, progress, invalid)


def _first_char(path: Path) -> str:
    for _, line, _ in iter_lines(path):
        if line.strip():
            return line.strip()[0]
    return ""


def _whole(path: Path) -> list[tuple[int, Any]]:
    text = decode(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path.name} line {e.lineno}: invalid JSON ({e.msg}); fix that line and retry") from None
    except RecursionError:
        raise DataError(f"{path.name}: the JSON is nested too deeply to be a dataset") from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
        if len(lists) == 1 and len(data) <= 3:  # {"data": [...]} or {"version": 1, "data": [...]}
            data = data[lists[0]]
        elif data and all(isinstance(v, dict) and "file_name" in v for v in data.values()):
            raise DataError(
                f"{path.name} is a LLaMA-Factory dataset_info.json; import the folder that holds it "
                "(format llamafactory), not the file"
            )
        else:
            raise DataError(
                f"{path.name}: the file holds one JSON object; a dataset is an array of rows (or one per line)"
            )
    if not isinstance(data, list):
        raise DataError(f"{path.name}: expected a JSON array of rows, got {type(data).__name__}")
    if not data:
        raise DataError(f"{path.name}: the JSON array is empty; it needs at least one example")
    return list(enumerate(data, start=1))


def _json_lines(path: Path, max_row_chars: int, progress: Progress | None, invalid: list[str] | None) -> Records:
    size = max(path.stat().st_size, 1)
    seen = False
    for lineno, line, done in iter_lines(path):
        if not line.strip():
            continue
        try:
            check_row_size(len(line), f"{path.name} line {lineno}", max_row_chars)
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if (lineno == 1 or not seen) and (invalid is None or _whole_file_parses(path)):
                yield from _whole_object(path, lineno, e)  # a pretty-printed JSON file, not JSON Lines
                return
            problem = (
                f"{path.name} line {lineno}: invalid JSON ({e.msg}); each line of a .jsonl file must be one JSON object"
            )
            leave_out(problem, invalid)
            continue
        except DataError as e:  # a line over the row size limit
            leave_out(str(e), invalid)
            continue
        except RecursionError:
            raise DataError(f"{path.name} line {lineno}: the JSON is nested too deeply to be a dataset") from None
        seen = True
        if progress and lineno % 5000 == 0:
            progress(done / size, f"reading {path.name}: line {lineno:,}")
        yield lineno, record


def _whole_file_parses(path: Path) -> bool:
    """Whether the file is one JSON document (with skip_invalid, a bad first line may be just a bad line)."""
    try:
        json.loads(decode(path))
    except (json.JSONDecodeError, RecursionError, DataError):
        return False
    return True


def _whole_object(path: Path, lineno: int, error: json.JSONDecodeError) -> Records:
    """The first line is not a whole object: a pretty-printed object (or an error on that line)."""
    if path.stat().st_size > 512 * 1024**2:
        raise DataError(f"{path.name} line {lineno}: invalid JSON ({error.msg}); fix that line and retry")
    yield from _whole(path)


def read_text_lines(path: Path, max_row_chars: int, invalid: list[str] | None = None) -> Records:
    """A .txt file for continued pre-training: one row per non-empty line (as LLaMA-Factory reads it).
    With `invalid` (skip_invalid), a line over the size limit is left out and listed there."""
    seen = False
    for lineno, line, _ in iter_lines(path):
        if not line.strip():
            continue
        try:
            check_row_size(len(line), f"{path.name} line {lineno}", max_row_chars)
        except DataError as e:
            leave_out(str(e), invalid)
            continue
        seen = True
        yield lineno, {"text": line}
    if not seen:
        raise DataError(f"{path.name}: the file is empty; it needs at least one line of text")
