"""Plain text for continued pre-training -> canonical rows with one `text` column (task sft).

Sources: .txt files (one row per non-empty line), or JSON/CSV/Parquet rows with a text column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from backend.data.readers import Records
from backend.data.validation import check_row_size, each_row, require_object, text_field


def looks_like(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("text"), str)


def convert(
    records: Records, file_name: str, max_row_chars: int, column: str = "text", invalid: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    def row(record: Any, at: str) -> dict[str, Any]:
        text = text_field(require_object(record, at, f"a '{column}' field"), column, at, required=True)
        check_row_size(len(text), at, max_row_chars)
        return {"text": text}

    return each_row(records, file_name, row, invalid)
