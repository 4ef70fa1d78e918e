"""Alpaca rows -> canonical SFT rows (`messages`: system, earlier turns from `history`, the prompt, the answer).

Alpaca fields: instruction (required), input (optional, appended to the instruction), output
(required), system (optional), history (optional list of [user, assistant] pairs), tools (optional).
LLaMA-Factory's `columns` can rename any of them (prompt/query/response/system/history/tools), and
tables of prompt/answer pairs under other common names (question/answer, prompt/completion, ...)
are read the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from backend.data.errors import DataError
from backend.data.readers import Records
from backend.data.validation import check_row_size, each_row, require_object, text_field, tools_text

COLUMNS = {"instruction": "instruction", "input": "input", "output": "output", "system": "system"}
COLUMNS |= {"history": "history", "tools": "tools"}


# Prompt/answer column pairs that other tools and hub datasets use, read as instruction/output.
PAIRS = (
    ("question", "answer"), ("prompt", "response"), ("prompt", "completion"), ("query", "response"),
    ("instruction", "response"), ("question", "response"), ("prompt", "answer"), ("input", "output"),
)  # fmt: skip


# Columns that grade a row's answer: such files are preference or safety data, not answers to learn.
GRADES = ("label", "labels", "score", "rating", "reward", "is_safe", "safe", "unsafe", "is_harmful", "harmful")
GRADES += ("toxic", "is_toxic", "preferred", "accepted", "rejected", "chosen")
INPUTS = ("input", "context", "query")  # text added to the prompt (Dolly's context, LLaMA-Factory's query)


def looks_like(record: Any) -> bool:
    return columns_of(record) is not None


def columns_of(record: Any) -> dict[str, str] | None:
    """The column mapping for a record: {} for Alpaca's own names; for a prompt/answer pair like PAIRS
    (names matched in any case) {"instruction": "Question", "output": "Answer", "input": ...}; None if
    neither, or if a column like GRADES says the answers are graded (safe/unsafe, a score), which is not
    instruction data: training on every answer would teach the bad ones too. (Dolly's `category`, the kind
    of task, is not a grade.)"""
    if not isinstance(record, dict):
        return None
    if "instruction" in record and "output" in record:
        return {}
    lower = {c.lower(): c for c in record if isinstance(c, str)}
    for prompt, answer in PAIRS:
        if prompt in lower and answer in lower:
            if any(g in lower for g in GRADES):
                return None
            extra = next((lower[c] for c in INPUTS if c in lower and c != prompt), "")
            return {"instruction": lower[prompt], "output": lower[answer], "input": extra}
    return None


def convert(
    records: Records,
    file_name: str,
    max_row_chars: int,
    columns: dict[str, str] | None = None,
    invalid: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    col = {**COLUMNS, **(columns or {})}
    return each_row(records, file_name, lambda record, at: _row(record, at, col, max_row_chars), invalid)


def _row(record: Any, at: str, col: dict[str, str], max_row_chars: int) -> dict[str, Any]:
    record = require_object(record, at, f"'{col['instruction']}' and '{col['output']}'")
    instruction = text_field(record, col["instruction"], at, required=True)
    output = text_field(record, col["output"], at, required=True)
    extra, system = text_field(record, col["input"], at), text_field(record, col["system"], at)
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for user, assistant in _history(record.get(col["history"]), at, col["history"]):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    prompt = instruction if not extra.strip() else f"{instruction}\n\n{extra}"
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    check_row_size(sum(len(m["content"]) for m in messages), at, max_row_chars)
    out: dict[str, Any] = {"messages": messages}
    tools = tools_text(record.get(col["tools"]), at)
    if tools is not None:
        out["tools"] = tools
    return out


def _history(value: Any, at: str, field: str) -> list[tuple[str, str]]:
    if value in (None, []):
        return []
    ok = isinstance(value, list) and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value
    )
    if not ok:
        raise DataError(f"{at}: field '{field}' must be a list of [user, assistant] text pairs")
    return [(u, a) for u, a in value]
