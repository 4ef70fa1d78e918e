"""Rows of a dataset as a person reads them, one page at a time, without loading the whole file."""

from __future__ import annotations

from typing import Any

from backend.workspace import Workspace


def flatten(row: dict[str, Any]) -> dict[str, str]:
    """One canonical row -> short text columns for a table (conversations: system, prompt, answer)."""
    if "messages" not in row:
        return {k: v for k, v in row.items() if k != "image"}
    messages = row["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    turns = [m for m in messages if m["role"] != "system"]
    last_user = max((i for i, m in enumerate(turns) if m["role"] == "user"), default=0)
    earlier = sum(m["role"] == "user" for m in turns[:last_user])
    prompt = turns[last_user]["content"] if turns else ""
    answer = "\n".join(m["content"] for m in turns[last_user + 1 :])
    shown = {"system": system, "prompt": (f"[+{earlier} earlier turns] " if earlier else "") + prompt}
    if "chosen" in row:  # a preference pair: the two answers side by side
        return shown | {"chosen": row["chosen"], "rejected": row["rejected"]}
    if "completion" in row:  # KTO: one answer and whether it is a good one
        return shown | {"completion": row["completion"], "desirable": str(row["desirable"]).lower()}
    if "answer" in row:  # GRPO prompts: the reference answer
        return shown | {"answer": row["answer"]}
    return shown | {"answer": answer}


def page(
    workspace: Workspace, dataset_id: int, split: str = "train", offset: int = 0, limit: int = 20
) -> list[dict[str, Any]]:
    """Canonical rows offset..offset+limit of one split, read by row groups (cheap for big files)."""
    import pyarrow.parquet as pq

    path = workspace.dataset_dir(dataset_id) / f"{split}.parquet"
    if not path.exists() or limit <= 0:
        return []
    pf = pq.ParquetFile(path)
    rows, start = [], 0
    for i in range(pf.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if start + n > offset and len(rows) < limit:
            table = pf.read_row_group(i)
            lo = max(offset - start, 0)
            rows += table.slice(lo, limit - len(rows)).to_pylist()
        start += n
        if len(rows) >= limit:
            break
    return rows


def preview(
    workspace: Workspace, dataset_id: int, offset: int = 0, limit: int = 20, split: str = "train"
) -> list[dict[str, Any]]:
    """Flattened rows for tables and the CLI (images are left out; see `page` for them)."""
    return [flatten(r) for r in page(workspace, dataset_id, split, offset, limit)]


def sample_rows(
    workspace: Workspace, dataset_id: int, split: str = "train", n: int = 2000, seed: int = 0
) -> list[dict]:
    """Up to `n` rows of a split drawn at random (seeded), without turning the whole file into Python objects."""
    import random

    import pyarrow.parquet as pq

    path = workspace.dataset_dir(dataset_id) / f"{split}.parquet"
    if not path.exists():
        return []
    table = pq.read_table(path, columns=[c for c in pq.read_schema(path).names if c != "image"])
    picked = sorted(random.Random(seed).sample(range(table.num_rows), min(n, table.num_rows)))
    return table.take(picked).to_pylist()
