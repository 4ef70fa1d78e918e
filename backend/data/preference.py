"""Preference, KTO and prompt-only rows -> canonical rows for dpo/orpo/reward, kto and grpo runs.

preference  messages (the prompt turns, ending with a user turn), chosen, rejected (answer texts)
kto         messages (the prompt turns), completion (an answer text), desirable (true/false)
prompts     messages (the prompt turns), answer (the reference answer, "" when none)

Each accepts the layouts people have: TRL's `prompt`/`chosen`/`rejected` (strings or message
lists, also the implicit-prompt form where `chosen` is the whole conversation), LLaMA-Factory's
ranking entries (`conversations` + `chosen`/`rejected` turns, or Alpaca `instruction`/`input`
+ `chosen`/`rejected`), KTO's `messages` (the last assistant turn is the completion) or
`prompt`/`completion` with a boolean `label`, and GRPO's `prompt` or `messages` with `answer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from backend.data import sharegpt
from backend.data.errors import DataError
from backend.data.messages import role_content_turn
from backend.data.readers import Records
from backend.data.validation import check_row_size, each_row, require_object, text_field

FORMATS = ("preference", "kto", "prompts")
TASK_OF = {"preference": "preference", "kto": "kto", "prompts": "prompts"}
# canonical name -> the file's column (LLaMA-Factory's dataset_info.json may rename them)
COLUMNS = {
    "conversations": "conversations",
    "messages": "messages",
    "prompt": "prompt",
    "instruction": "instruction",
    "input": "input",
    "system": "system",
    "chosen": "chosen",
    "rejected": "rejected",
    "completion": "completion",
    "label": "label",
    "answer": "answer",
}
PAIR_HINT = "every preference pair needs both 'chosen' and 'rejected' answers"


def detect(record: Any) -> str:
    """'preference', 'kto' or 'prompts' when a row looks like one ("" otherwise)."""
    if not isinstance(record, dict):
        return ""
    if "chosen" in record or "rejected" in record:
        return "preference"
    if "label" in record and isinstance(record["label"], bool) and ({"messages", "completion"} & set(record)):
        return "kto"
    if "prompt" in record and not {"completion", "response", "output"} & set(record):
        return "prompts"
    return ""


def convert(
    records: Records,
    fmt: str,
    file_name: str,
    max_row_chars: int,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    invalid: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    col = {**COLUMNS, **(columns or {})}
    make = {"preference": _pair, "kto": _kto, "prompts": _prompt_row}[fmt]

    def row(record: Any, at: str) -> dict[str, Any]:
        record = require_object(record, at, "prompt and answer fields")
        out = make(record, at, col, tags)
        check_row_size(sum(len(m["content"]) for m in out["messages"]) + _answer_chars(out), at, max_row_chars)
        return out

    return each_row(records, file_name, row, invalid)


def _answer_chars(row: dict[str, Any]) -> int:
    return sum(len(row.get(k) or "") for k in ("chosen", "rejected", "completion", "answer"))


def _pair(record: dict[str, Any], at: str, col: dict[str, str], tags: dict[str, str] | None) -> dict[str, Any]:
    for side in ("chosen", "rejected"):
        if record.get(col[side]) in (None, "", []):
            raise DataError(f"{at}: field '{col[side]}' is missing or empty; {PAIR_HINT}")
    chosen_raw, rejected_raw = record[col["chosen"]], record[col["rejected"]]
    prompt = _prompt(record, at, col, tags, required=False)
    if not prompt and isinstance(chosen_raw, list):  # TRL's implicit prompt: the turns both answers share
        prompt = [role_content_turn(t, f"{at} chosen turn {i}") for i, t in enumerate(chosen_raw[:-1], start=1)]
    if not prompt:
        raise DataError(f"{at}: no prompt; give 'prompt', 'messages', 'conversations' or 'instruction'")
    chosen = _answer(chosen_raw, at, col["chosen"], tags)
    rejected = _answer(rejected_raw, at, col["rejected"], tags)
    if chosen.strip() == rejected.strip():
        raise DataError(f"{at}: 'chosen' and 'rejected' are identical; a pair must differ, fix or remove the row")
    return {"messages": _checked_prompt(prompt, at), "chosen": chosen, "rejected": rejected}


def _kto(record: dict[str, Any], at: str, col: dict[str, str], tags: dict[str, str] | None) -> dict[str, Any]:
    label = record.get(col["label"])
    if isinstance(label, str) and label.strip().lower() in ("true", "false"):  # CSV has no booleans
        label = label.strip().lower() == "true"
    if not isinstance(label, bool):
        raise DataError(f"{at}: field '{col['label']}' must be true or false (is the answer desirable?), got {label!r}")
    if col["completion"] in record:
        prompt = _prompt(record, at, col, tags, required=True)
        completion = _answer(record[col["completion"]], at, col["completion"], tags)
    else:
        turns = _prompt(record, at, col, tags, required=True)
        if turns[-1]["role"] != "assistant":
            raise DataError(f"{at}: the last turn must be the assistant's answer that '{col['label']}' judges")
        prompt, completion = turns[:-1], turns[-1]["content"]
    return {"messages": _checked_prompt(prompt, at), "completion": completion, "desirable": label}


def _prompt_row(record: dict[str, Any], at: str, col: dict[str, str], tags: dict[str, str] | None) -> dict[str, Any]:
    turns = _prompt(record, at, col, tags, required=True)
    answer = record.get(col["answer"])
    if answer is not None and not isinstance(answer, str | int | float) or isinstance(answer, bool):
        raise DataError(f"{at}: field '{col['answer']}' must be text or a number, got {type(answer).__name__}")
    if turns[-1]["role"] == "assistant":  # a chat row: its answer is the reference unless one is given
        answer = answer if answer is not None else turns[-1]["content"]
        turns = turns[:-1]
    return {"messages": _checked_prompt(turns, at), "answer": "" if answer is None else str(answer)}


def _prompt(
    record: dict[str, Any],
    at: str,
    col: dict[str, str],
    tags: dict[str, str] | None,
    required: bool,
) -> list[dict[str, str]]:
    """The turns from whichever field the row has (a system field goes first); KTO and prompt rows may
    end with an assistant turn, which their callers take as the answer."""
    system = text_field(record, col["system"], at)
    turns: list[dict[str, str]] = [{"role": "system", "content": system}] if system.strip() else []
    if col["conversations"] in record:
        tag = {**sharegpt.TAGS, **(tags or {})}
        roles = sharegpt.ALIASES | {tag[k]: r for k, r in sharegpt.ROLE_OF_TAG.items()}
        for i, t in enumerate(_list(record, col["conversations"], at), start=1):
            turns.append(sharegpt._turn(t, f"{at} turn {i}", tag, roles))
    elif col["messages"] in record or isinstance(record.get(col["prompt"]), list):
        name = col["messages"] if col["messages"] in record else col["prompt"]
        turns += [role_content_turn(t, f"{at} message {i}") for i, t in enumerate(_list(record, name, at), 1)]
    elif col["prompt"] in record or col["instruction"] in record:
        name = col["prompt"] if col["prompt"] in record else col["instruction"]
        text = text_field(record, name, at, required=True)
        extra = text_field(record, col["input"], at)
        turns.append({"role": "user", "content": f"{text}\n{extra}" if extra.strip() else text})
    elif required:
        raise DataError(f"{at}: no prompt; give 'prompt' (text or messages), 'messages' or 'conversations'")
    return turns


def _list(record: dict[str, Any], name: str, at: str) -> list[Any]:
    value = record[name]
    if not isinstance(value, list) or not value:
        raise DataError(f"{at}: field '{name}' must be a non-empty list of turns")
    return value


def _checked_prompt(turns: list[dict[str, str]], at: str) -> list[dict[str, str]]:
    if not turns or turns[-1]["role"] != "user":
        raise DataError(f"{at}: the prompt must end with a user turn (the question the answers reply to)")
    if any(t["role"] == "system" for t in turns[1:]):
        raise DataError(f"{at}: a system turn may only come first; move it to the start")
    return turns


def _answer(value: Any, at: str, name: str, tags: dict[str, str] | None) -> str:
    """An answer given as text, as one turn ({"from"/"role", "value"/"content"}) or as message list (its last)."""
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, dict):
        key = (tags or {}).get("content_tag") or next((k for k in ("content", "value") if k in value), "content")
        value = value.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{at}: field '{name}' must be a non-empty answer text (or turn), got {value!r}")
    return value


def preference_stats(task: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What `datasets show` reports for these tasks: prompt and answer sizes, and KTO's good/bad counts."""
    if not rows:
        return {}
    prompt = [sum(len(m["content"]) for m in r["messages"]) for r in rows]
    stats: dict[str, Any] = {"mean_prompt_chars": round(sum(prompt) / len(rows), 1)}
    if task == "preference":
        stats["mean_chosen_chars"] = round(sum(len(r["chosen"]) for r in rows) / len(rows), 1)
        stats["mean_rejected_chars"] = round(sum(len(r["rejected"]) for r in rows) / len(rows), 1)
    elif task == "kto":
        stats["desirable_rows"] = sum(bool(r["desirable"]) for r in rows)
        stats["undesirable_rows"] = len(rows) - stats["desirable_rows"]
    else:
        stats["rows_with_answer"] = sum(bool(r["answer"]) for r in rows)
    # the longest sequence a trainer builds (prompt + one answer): the memory estimate pads batches to it
    answers = [max(len(r.get(k) or "") for k in ("chosen", "rejected", "completion")) for r in rows]
    stats["max_chars"] = max(p + a for p, a in zip(prompt, answers, strict=True))
    return stats
