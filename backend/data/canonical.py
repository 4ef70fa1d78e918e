"""The canonical schema per task, written as Parquet; row fingerprints for duplicates and the content hash.

sft                   messages: list<{role, content}>, optional tools (JSON text) | or text
text-classification   text, label, optional text_pair
preference            messages (prompt turns), chosen, rejected
kto                   messages (prompt turns), completion, desirable (bool)
prompts               messages (prompt turns), answer
image-classification  image (the encoded file's bytes), label, file
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MESSAGE = [("role", "string"), ("content", "string")]
BATCH_ROWS = 20_000  # rows per Parquet write: bounds the Arrow copy held in memory at once


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Columns in canonical order; optional ones only when some row has them."""
    present = set().union(*(r.keys() for r in rows[:1000])) | ({"tools"} if any("tools" in r for r in rows) else set())
    order = ("messages", "tools", "text", "text_pair", "label", "image", "file")
    order += ("chosen", "rejected", "completion", "desirable", "answer")
    return [c for c in order if c in present]


def schema(columns: list[str]):
    import pyarrow as pa

    types = {
        "messages": pa.list_(pa.struct([(k, getattr(pa, t)()) for k, t in MESSAGE])),
        "tools": pa.string(),
        "text": pa.string(),
        "text_pair": pa.string(),
        "label": pa.string(),
        "image": pa.binary(),
        "file": pa.string(),
        "chosen": pa.string(),
        "rejected": pa.string(),
        "completion": pa.string(),
        "desirable": pa.bool_(),
        "answer": pa.string(),
    }
    return pa.schema([(c, types[c]) for c in columns])


def write_parquet(rows: list[dict[str, Any]], columns: list[str], target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    s = schema(columns)
    with pq.ParquetWriter(target, s) as writer:
        for start in range(0, max(len(rows), 1), BATCH_ROWS):
            batch = [{c: r.get(c) for c in columns} for r in rows[start : start + BATCH_ROWS]]
            writer.write_table(pa.Table.from_pylist(batch, schema=s))


def fingerprint(row: dict[str, Any]) -> bytes:
    """16 bytes that equal another row's exactly when the rows have the same content."""
    h = hashlib.blake2b(digest_size=16)
    if "image" in row:  # an image is its pixels' file and its label, whatever the file is called
        h.update(row["image"])
        h.update(b"\0" + row["label"].encode())
    else:
        h.update(json.dumps(row).encode())  # canonical rows are built with a fixed key order
    return h.digest()


def content_hash(task: str, splits: dict[str, list[bytes]]) -> str:
    """sha256 over the task and every split's row fingerprints, in order: equal for identical canonical content."""
    h = hashlib.sha256(task.encode())
    for name in sorted(splits):
        h.update(f"\n{name}\n".encode())
        for digest in splits[name]:
            h.update(digest)
    return h.hexdigest()
