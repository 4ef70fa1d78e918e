"""Which format a file (or folder) is in, from its first row or its file names; and the task it implies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.data import alpaca, classification, messages, preference, sharegpt, text
from backend.data.errors import DataError
from backend.data.options import SPLIT_ALIASES

TASK_OF = {
    "alpaca": "sft",
    "sharegpt": "sft",
    "messages": "sft",
    "text": "sft",
    "classification": "text-classification",
    "imagefolder": "image-classification",
    **preference.TASK_OF,
}
EXAMPLES = (
    'Alpaca {"instruction": "...", "output": "..."}; ShareGPT {"conversations": [{"from": "human", "value": "..."}]}; '
    'messages {"messages": [{"role": "user", "content": "..."}]}; plain text {"text": "..."}; '
    "or a table with text and label columns"
)


def detect_format(record: Any, file_name: str, task: str = "", text_column: str = "", label_column: str = "") -> str:
    """The record format of a file from its first row, honouring the task and columns a person chose."""
    if task == "image-classification":
        raise DataError(f"{file_name}: image classification needs a zip of images (class folders or a CSV of labels)")
    if not isinstance(record, dict):
        raise DataError(f"{file_name} row 1: expected an object (one row), got {type(record).__name__}; {EXAMPLES}")
    columns = list(record)
    if task == "text-classification" or label_column:
        return "classification"
    if task in preference.FORMATS or preference.detect(record):
        return task if task in preference.FORMATS else preference.detect(record)
    for name, module in (("sharegpt", sharegpt), ("messages", messages), ("alpaca", alpaca)):
        if module.looks_like(record):
            return name
    if task != "sft" and classification.looks_like(columns):
        return "classification"
    if text.looks_like(record) or (text_column and columns == [text_column]):
        return "text"
    if text_column:  # a table with more columns: plain text would silently drop them (a label, say)
        raise DataError(
            f"{file_name}: the format was not recognised and only a text column ('{text_column}') is given; "
            "name the label column for text classification, or choose format 'text' to train on the text alone"
        )
    shown = ", ".join(f"'{c}'" for c in columns[:12]) or "none"
    raise DataError(f"{file_name}: could not detect the format from the fields {shown}; expected {EXAMPLES}")


def task_of(fmt: str, task: str, source: str) -> str:
    """The dataset's task: the format's, checked against the one a person asked for."""
    implied = TASK_OF[fmt]
    if task and task != implied:
        raise DataError(f"{source}: format '{fmt}' makes a {implied} dataset, but the task asked for is {task}")
    return implied


def split_of(rel: Path) -> str | None:
    """The split a file belongs to from its name or folder: train.jsonl, validation/x.csv, test-00000-of-1.parquet."""
    for part in (*rel.parts[:-1], rel.stem):
        word = part.lower().replace("_", "-").split("-")[0]
        if word in SPLIT_ALIASES and (part.lower() == word or not part[len(word) :][:1].isalpha()):
            return SPLIT_ALIASES[word]
    return None
