"""Alpaca format -> the canonical SFT schema: one row per example, `messages` as role/content turns.

Alpaca fields: instruction (required), input (optional, appended to the instruction), output
(required), system (optional), history (optional list of [user, assistant] pairs before it).
"""

from __future__ import annotations

from typing import Any

from backend.data.readers import DataError

FIELDS = ("instruction", "input", "output", "system", "history")
MAX_FIELD_CHARS = 100_000  # one field this long is almost always a broken export


def looks_like_alpaca(record: Any) -> bool:
    return isinstance(record, dict) and "instruction" in record and "output" in record


def to_messages(records: list[tuple[int, Any]], file_name: str) -> list[dict[str, Any]]:
    """Validate every row first; return canonical rows only if all of them are good."""
    rows = []
    for row, record in records:
        where = f"{file_name} row {row}"
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object with 'instruction' and 'output', got {type(record).__name__}")
        missing = [f for f in ("instruction", "output") if f not in record]
        if missing:
            raise DataError(f"{where}: field '{missing[0]}' is missing; every row needs 'instruction' and 'output'")
        text = {f: _text(record, f, where) for f in ("instruction", "input", "output", "system")}
        for f in ("instruction", "output"):
            if not text[f].strip():
                raise DataError(f"{where}: field '{f}' is empty; fill it in or remove the row")
        messages = []
        if text["system"].strip():
            messages.append({"role": "system", "content": text["system"]})
        for user, assistant in _history(record.get("history"), where):
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        prompt = text["instruction"] if not text["input"].strip() else f"{text['instruction']}\n\n{text['input']}"
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": text["output"]}]
        rows.append({"messages": messages})
    return rows


def _text(record: dict[str, Any], field: str, where: str) -> str:
    value = record.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{field}' must be text, got {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise DataError(f"{where}: field '{field}' has {len(value):,} characters, over the {MAX_FIELD_CHARS:,} limit")
    return value


def _history(value: Any, where: str) -> list[tuple[str, str]]:
    if value in (None, []):
        return []
    ok = isinstance(value, list) and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value
    )
    if not ok:
        raise DataError(f"{where}: field 'history' must be a list of [user, assistant] text pairs")
    return [(u, a) for u, a in value]
