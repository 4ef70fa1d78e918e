"""OpenAI-style rows -> canonical SFT rows.

A row is {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}], "tools": [...]}.
Content given as a list of {"type": "text", "text": ...} parts is joined; an assistant turn with
`tool_calls` and no content keeps the calls as JSON text; the old "function" role reads as "tool".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from backend.data.errors import DataError
from backend.data.readers import Records
from backend.data.validation import checked_conversation, each_row, require_object

ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool", "function": "tool"}


def looks_like(record: Any) -> bool:
    return isinstance(record, dict) and "messages" in record


def convert(
    records: Records, file_name: str, max_row_chars: int, column: str = "messages", invalid: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    def row(record: Any, at: str) -> dict[str, Any]:
        record = require_object(record, at, f"a '{column}' list")
        turns = record.get(column)
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{at}: field '{column}' must be a non-empty list of {{role, content}} turns")
        messages = [role_content_turn(t, f"{at} message {i}") for i, t in enumerate(turns, start=1)]
        return checked_conversation(messages, record.get("tools"), at, max_row_chars)

    return each_row(records, file_name, row, invalid)


def role_content_turn(turn: Any, at: str) -> dict[str, str]:
    if not isinstance(turn, dict) or "role" not in turn:
        raise DataError(f'{at}: a message needs "role" and "content", e.g. {{"role": "user", "content": "Hi"}}')
    role = turn["role"]
    if role not in ROLES:
        raise DataError(f"{at}: role '{role}' is unknown; use system, user, assistant or tool")
    content = _content(turn.get("content"), at)
    call = turn.get("tool_calls") or turn.get("function_call")  # the call itself is what the model learns
    if not content.strip() and call:
        content = json.dumps(call, ensure_ascii=False)
    if not content.strip():
        raise DataError(f"{at}: the {role} message is empty; fill it in or remove the row")
    return {"role": ROLES[role], "content": content}


def _content(value: Any, at: str) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise DataError(f"{at}: content part of type '{kind}' is not supported; only text parts are")
        return "\n".join(parts)
    raise DataError(f"{at}: 'content' must be text, got {type(value).__name__}")
