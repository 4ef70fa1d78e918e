"""ShareGPT rows -> canonical SFT rows.

A row is {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}], "system": "",
"tools": "[...]"}. Roles: human -> user, gpt -> assistant, function_call -> assistant (the call kept as
text), observation -> tool, system -> system. LLaMA-Factory's `columns` and `tags` rename any of these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from backend.data.errors import DataError
from backend.data.messages import role_content_turn
from backend.data.readers import Records
from backend.data.validation import checked_conversation, each_row, require_object, text_field

COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools"}
TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
ROLE_OF_TAG = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "assistant",
    "system_tag": "system",
}

ALIASES = {"user": "user", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}
ALIASES |= {"model": "assistant", "tool": "tool", "function_response": "tool"}


def looks_like(record: Any) -> bool:
    return isinstance(record, dict) and "conversations" in record


def convert(
    records: Records,
    file_name: str,
    max_row_chars: int,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    invalid: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    col, tag = {**COLUMNS, **(columns or {})}, {**TAGS, **(tags or {})}
    roles = {tag[k]: role for k, role in ROLE_OF_TAG.items()}
    if not tags:  # ShareGPT dumps in the wild also use these names
        roles = ALIASES | roles

    def row(record: Any, at: str) -> dict[str, Any]:
        record = require_object(record, at, f"a '{col['messages']}' list")
        turns = record.get(col["messages"])
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{at}: field '{col['messages']}' must be a non-empty list of turns")
        messages = []
        system = text_field(record, col["system"], at)
        if system.strip():
            messages.append({"role": "system", "content": system})
        for i, turn in enumerate(turns, start=1):
            if not tags and isinstance(turn, dict) and "from" not in turn and "role" in turn:
                messages.append(role_content_turn(turn, f"{at} turn {i}"))  # OpenAI-style turns under "conversations"
            else:
                messages.append(_turn(turn, f"{at} turn {i}", tag, roles))
        return checked_conversation(messages, record.get(col["tools"]), at, max_row_chars)

    return each_row(records, file_name, row, invalid)


def _turn(turn: Any, at: str, tag: dict[str, str], roles: dict[str, str]) -> dict[str, str]:
    role_tag, content_tag = tag["role_tag"], tag["content_tag"]
    if not isinstance(turn, dict) or role_tag not in turn or content_tag not in turn:
        raise DataError(f"{at}: a turn needs '{role_tag}' and '{content_tag}', e.g. {{\"{role_tag}\": \"human\", ...}}")
    who = turn[role_tag]
    if who not in roles:
        raise DataError(f"{at}: role '{who}' is unknown; use one of {', '.join(roles)}")
    content = turn[content_tag]
    if not isinstance(content, str):
        raise DataError(f"{at}: '{content_tag}' must be text, got {type(content).__name__}")
    if not content.strip():
        raise DataError(f"{at}: the {who} turn is empty; fill it in or remove the row")
    return {"role": roles[who], "content": content}
