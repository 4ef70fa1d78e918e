"""Checks every converter shares: text fields, row sizes, and the place an error points at."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from backend.data.errors import DataError

SKIP_HINT = "to import the other rows, tick 'Leave out rows with problems' (CLI: --skip-invalid)"
# When the very first row fails, the cause is usually the whole file (the wrong format or columns),
# and leaving rows out would leave them all out.
FIRST_ROW_HINT = (
    "if every row looks like this one, choose the format or the columns by hand; if only some do, "
    "tick 'Leave out rows with problems' (CLI: --skip-invalid)"
)


def leave_out(problem: str, invalid: list[str] | None, hint: str = SKIP_HINT) -> None:
    """A row (or line) with a problem: stop the import with the problem and `hint`, or, with the skip_invalid
    option (`invalid` is a list), record it there and go on."""
    if invalid is None:
        raise DataError(f"{problem}; {hint}") from None
    invalid.append(problem)


def where(file_name: str, row: int) -> str:
    return f"{file_name} row {row}"


def each_row(
    records: Any,
    file_name: str,
    convert_row: Callable[[Any, str], dict[str, Any]],
    invalid: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """`convert_row(record, "FILE row N")` for every record. A row it refuses stops the import, or, when
    `invalid` is a list (the skip_invalid option), is left out and its message appended there."""
    for seen, (row, record) in enumerate(records):
        at = where(file_name, row)
        try:
            out = convert_row(record, at)
        except DataError as e:
            leave_out(str(e), invalid, FIRST_ROW_HINT if seen == 0 else SKIP_HINT)
            continue
        yield out


def require_object(record: Any, at: str, expected: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise DataError(f"{at}: expected an object with {expected}, got {_kind(record)}")
    return record


def text_field(record: dict[str, Any], field: str, at: str, required: bool = False) -> str:
    """The field as text; missing/None is "" unless required; numbers or lists are refused."""
    if field not in record or record[field] is None:
        if required:
            raise DataError(f"{at}: field '{field}' is missing; every row needs it")
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise DataError(f"{at}: field '{field}' must be text, got {_kind(value)}; quote it or fix the export")
    if required and not value.strip():
        raise DataError(f"{at}: field '{field}' is empty; fill it in or remove the row")
    return value


def check_row_size(chars: int, at: str, limit: int) -> None:
    if chars > limit:
        raise DataError(
            f"{at}: the row has {chars:,} characters, over the {limit:,} limit; shorten or split it "
            "(TUNEBOARD_MAX_ROW_CHARS raises the limit)"
        )


def tools_text(value: Any, at: str) -> str | None:
    """A `tools` value as JSON text (the canonical `tools` column), or None when absent."""
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            raise DataError(
                f"{at}: field 'tools' is not valid JSON; it must describe the tools as a JSON list"
            ) from None
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    raise DataError(f"{at}: field 'tools' must be a JSON list of tool descriptions, got {_kind(value)}")


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), "nothing" if value is None else type(value).__name__
    )


def checked_conversation(messages: list[dict[str, str]], tools: Any, at: str, max_row_chars: int) -> dict[str, Any]:
    """Shared by ShareGPT and OpenAI messages: a system turn only first, a user turn, an answer to learn."""
    if any(m["role"] == "system" for m in messages[1:]):
        raise DataError(f"{at}: a system turn may only come first; move it to the start")
    if not any(m["role"] == "user" for m in messages):
        raise DataError(f"{at}: the conversation has no user turn")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{at}: the conversation has no assistant turn, so there is nothing to learn")
    check_row_size(sum(len(m["content"]) for m in messages), at, max_row_chars)
    out: dict[str, Any] = {"messages": messages}
    tools_json = tools_text(tools, at)
    if tools_json is not None:
        out["tools"] = tools_json
    return out
