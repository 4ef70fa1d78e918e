"""Text classification rows -> canonical rows: `text`, `label` (a class name), optional `text_pair`.

Columns are found by their usual names (text/sentence/review..., label/class/category...) or
named by the person (`--text-column`, `--label-column`, `--text-pair-column`). Integer labels
become their string ("0", "1"); a file mixing integer and text labels is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from backend.data.errors import DataError
from backend.data.readers import Records
from backend.data.validation import check_row_size, each_row, require_object, text_field

TEXT_NAMES = ("text", "sentence", "content", "review", "document", "comment", "tweet", "body", "sentence1")
TEXT_NAMES += ("premise", "question1", "question", "query", "utterance", "input", "description", "message", "title")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "intent", "class_name", "class index")
LABEL_NAMES += ("y", "tag", "topic", "emotion")
PAIR_NAMES = ("text_pair", "sentence2", "hypothesis", "question2", "text_b")


def guess_column(columns: list[str], names: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
    """The first column whose lower-cased name is one of `names` (in that order of preference), or ""."""
    lower = {c.lower(): c for c in columns if c not in exclude}
    return next((lower[n] for n in names if n in lower), "")


def resolve_columns(
    columns: list[str], file_name: str, text: str = "", label: str = "", pair: str = ""
) -> tuple[str, str, str]:
    """(text, label, text pair) columns: the person's choice, checked, or the usual names."""
    for given, what in ((text, "text"), (label, "label"), (pair, "text pair")):
        if given and given not in columns:
            raise DataError(
                f"{file_name}: {what} column '{given}' is not in the file; its columns are {_list(columns)}"
            )
    text = text or guess_column(columns, TEXT_NAMES, (label,))
    label = label or guess_column(columns, LABEL_NAMES, (text,))
    if not text:
        raise DataError(f"{file_name}: no text column found among {_list(columns)}; choose one with --text-column")
    if not label:
        raise DataError(f"{file_name}: no label column found among {_list(columns)}; choose one with --label-column")
    if text == label:
        raise DataError(f"{file_name}: the text and label columns are both '{text}'; choose two different columns")
    pair = pair or guess_column(columns, PAIR_NAMES, (text, label))
    return text, label, pair


def looks_like(columns: list[str]) -> bool:
    return bool(guess_column(columns, LABEL_NAMES)) and bool(guess_column(columns, TEXT_NAMES))


def convert(
    records: Records,
    file_name: str,
    max_row_chars: int,
    text: str,
    label: str,
    pair: str = "",
    invalid: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    first_kind = ""

    def row(record: Any, at: str) -> dict[str, Any]:
        nonlocal first_kind
        record = require_object(record, at, f"'{text}' and '{label}' fields")
        out = {"text": text_field(record, text, at, required=True)}
        if pair:
            out["text_pair"] = text_field(record, pair, at)
        value, kind = label_text(record.get(label), f"{at}: field '{label}'")
        if kind != (first_kind or kind):
            raise DataError(
                f"{at}: field '{label}' is {kind} but earlier rows have {first_kind} labels; use one kind of label"
            )
        out["label"] = value
        check_row_size(len(out["text"]) + len(out.get("text_pair", "")), at, max_row_chars)
        first_kind = kind
        return out

    return each_row(records, file_name, row, invalid)


def label_text(value: Any, at: str) -> tuple[str, str]:
    """(label as a class name, "text" or "integer") for a label cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{at} is empty; every row needs a label")
    if isinstance(value, bool):
        return str(value).lower(), "text"
    if isinstance(value, int):
        return str(value), "integer"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value)), "integer"
        raise DataError(f"{at} is {value}; labels must be class names or whole numbers")
    if isinstance(value, str):
        return value.strip(), "text"
    raise DataError(f"{at} must be a class name or a whole number, got {type(value).__name__}")


def check_classes(labels: list[str], file_name: str) -> list[str]:
    """The sorted class names; a single class cannot train a classifier."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        only = classes[0] if classes else "none"
        raise DataError(
            f"{file_name}: every row has the label '{only}'; a classifier needs at least two classes "
            "(check the label column)"
        )
    return classes


def _list(columns: list[str]) -> str:
    return ", ".join(f"'{c}'" for c in columns[:20]) + (" ..." if len(columns) > 20 else "")
