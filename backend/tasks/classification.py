"""What text and image classification share: the class list, a stratified hold-out, Trainer metrics.

Class ids are positions in the sorted list of labels (the same list as the dataset's
stats["labels"]), so a saved model's id2label matches what the Datasets tab shows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def class_list(train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]], task: str) -> list[str]:
    """Sorted labels of both splits; refuses rows without a label and data sets with one class."""
    for split, rows in (("train", train_rows), ("validation", eval_rows)):
        for i, row in enumerate(rows, start=1):
            if row.get("label") in (None, ""):
                raise ValueError(f"{split} row {i} has no 'label'; every {task} row needs one")
    if not train_rows:
        raise ValueError(f"the dataset has no training rows; import a {task} dataset with at least two classes")
    labels = sorted({str(r["label"]) for r in train_rows} | {str(r["label"]) for r in eval_rows})
    if len(labels) < 2:
        raise ValueError(
            f"the dataset has a single class ('{labels[0]}'); classification needs at least two: "
            "add examples of another class"
        )
    return labels


def hold_out(
    train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]], ratio: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, eval): the dataset's own validation split if it has one, else `ratio` of the rows,
    stratified by label so every class is scored (when each has at least two rows)."""
    if eval_rows or ratio <= 0 or len(train_rows) < 10:
        return train_rows, eval_rows
    from sklearn.model_selection import train_test_split

    labels = [str(r["label"]) for r in train_rows]
    counts = Counter(labels)
    stratify = labels if min(counts.values()) >= 2 and round(len(labels) * ratio) >= len(counts) else None
    train, held = train_test_split(train_rows, test_size=ratio, random_state=seed, stratify=stratify)
    log.info("held out %d of %d rows for validation (val_ratio=%s)", len(held), len(train_rows), ratio)
    return train, held


def trainer_metrics(labels: list[str]) -> Callable[[Any], dict[str, Any]]:
    """Trainer's compute_metrics: argmax of the logits scored by backend.metrics.

    Floats (accuracy, precision/recall/F1 macro) become eval_* metric points each epoch; the
    per-class scores and the confusion matrix are dicts, kept on the run by the worker.
    """
    import numpy as np

    from backend.metrics import classification_metrics

    def compute(prediction: Any) -> dict[str, Any]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return classification_metrics(
            np.asarray(prediction.label_ids).tolist(), np.argmax(logits, axis=-1).tolist(), labels
        )

    return compute
