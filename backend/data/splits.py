"""Train/validation/test splits by ratio with a seed; stratified by label for classification.

Splits given by the files (train.csv, validation.csv...) or the hub are kept as they are.
"""

from __future__ import annotations

from typing import Any

from backend.data.errors import DataError


def split_rows(
    rows: list[dict[str, Any]], val_ratio: float, test_ratio: float, seed: int, stratify: bool, source: str
) -> dict[str, list[dict[str, Any]]]:
    """{"train": [...], "validation": [...], "test": [...]} (only non-empty held-out splits)."""
    if val_ratio <= 0 and test_ratio <= 0:
        return {"train": rows}
    from sklearn.model_selection import train_test_split

    held = val_ratio + test_ratio
    labels = [r["label"] for r in rows] if stratify else None
    n_held = round(len(rows) * held)
    if n_held < 1 or len(rows) - n_held < 1:
        raise DataError(
            f"{source}: {len(rows)} rows are too few to hold out {held:.0%} for validation and test; "
            "add rows or set the ratios to 0"
        )
    if stratify:
        _check_stratifiable(labels, n_held, source)
    index = list(range(len(rows)))
    train_i, held_i = train_test_split(index, test_size=n_held, random_state=seed, stratify=labels)
    out = {"train": [rows[i] for i in train_i]}
    if val_ratio > 0 and test_ratio > 0:
        held_labels = [labels[i] for i in held_i] if stratify else None
        n_test = round(len(held_i) * test_ratio / held)
        if n_test < 1 or n_test >= len(held_i):
            out["validation"] = [rows[i] for i in held_i]
        else:
            strat = held_labels if stratify and _stratifiable(held_labels, n_test) else None
            val_i, test_i = train_test_split(held_i, test_size=n_test, random_state=seed, stratify=strat)
            out["validation"], out["test"] = [rows[i] for i in val_i], [rows[i] for i in test_i]
    else:
        out["validation" if val_ratio > 0 else "test"] = [rows[i] for i in held_i]
    return out


def _check_stratifiable(labels: list[str], n_held: int, source: str) -> None:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    rare = sorted(k for k, v in counts.items() if v < 2)
    if rare:
        raise DataError(
            f"{source}: class '{rare[0]}' has only one row, so it cannot appear in both training and validation; "
            "add rows for it, remove it, or set the validation and test ratios to 0"
        )
    if n_held < len(counts) or len(labels) - n_held < len(counts):
        raise DataError(
            f"{source}: {len(labels)} rows in {len(counts)} classes are too few for a stratified split at these "
            "ratios; add rows, raise the ratios, or set them to 0"
        )


def _stratifiable(labels: list[str], n_test: int) -> bool:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return min(counts.values()) >= 2 and len(counts) <= n_test <= len(labels) - len(counts)
