"""Rows of a dataset as a person reads them: system, prompt, answer (earlier turns counted)."""

from __future__ import annotations

from typing import Any

from backend.data.importer import load_rows
from backend.workspace import Workspace


def flatten(row: dict[str, Any]) -> dict[str, str]:
    """One canonical SFT row -> the columns a preview table shows."""
    messages = row["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    turns = [m for m in messages if m["role"] != "system"]
    earlier = (len(turns) - 2) // 2
    prompt = turns[-2]["content"] if len(turns) >= 2 else ""
    return {
        "system": system,
        "prompt": (f"[+{earlier} earlier turns] " if earlier else "") + prompt,
        "answer": turns[-1]["content"] if turns else "",
    }


def preview(workspace: Workspace, dataset_id: int, offset: int = 0, limit: int = 20) -> list[dict[str, str]]:
    rows = load_rows(workspace, dataset_id)
    return [flatten(r) for r in rows[offset : offset + limit]]
