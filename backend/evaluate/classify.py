"""Classification suites: a classifier run scored on a labelled split of a dataset (`dataset:NAME[:SPLIT]`).

Each row's predicted class is the run's most probable one (backend/playground/predict.py loads the run as
the playground does); a sample scores 1 when it is the row's label. The result adds accuracy, macro
precision / recall / F1 and the confusion matrix (backend/metrics.py, scikit-learn).

    suite = dataset_suite(database, workspace, "dataset:tickets:test")
    samples = classification_samples(classifier, suite, progress)
    scores(samples)   # {"accuracy", "precision_macro", "recall_macro", "f1_macro", "confusion_matrix", ...}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.evaluate.suites import Suite
from backend.workspace import Workspace
from db import Database

PREFIX = "dataset:"
SPLITS = ("test", "validation", "train")  # the split used when none is named: the first that has rows


def dataset_suite(database: Database, workspace: Workspace, source: str) -> Suite:
    from backend.data import find_dataset
    from backend.data.preview import page

    name, _, split = source.removeprefix(PREFIX).partition(":")
    ds = find_dataset(database, name)
    if ds.task != "text-classification":
        raise ValueError(f"suite '{source}': dataset '{ds.name}' is {ds.task}; name a text-classification dataset")
    have = [s for s in SPLITS if ds.splits.get(s)]
    split = split or (have[0] if have else "train")
    if not ds.splits.get(split):
        raise ValueError(f"suite '{source}': dataset '{ds.name}' has no '{split}' split; it has {', '.join(have)}")
    rows = [
        {"text": r["text"], "text_pair": r.get("text_pair") or None, "label": str(r["label"])}
        for r in page(workspace, ds.id, split, 0, ds.splits[split])
    ]
    return Suite(f"{PREFIX}{ds.name}:{split}", "classification", "accuracy", source, rows)


def classification_samples(
    classifier: Any, suite: Suite, progress: Callable[[int], None] | None = None, batch: int = 64
) -> list[dict[str, Any]]:
    from backend.playground.predict import probabilities

    samples = []
    for start in range(0, len(suite.rows), batch):
        chunk = suite.rows[start : start + batch]
        probs = probabilities(classifier, [r["text"] for r in chunk], [r["text_pair"] for r in chunk])
        for i, (row, p) in enumerate(zip(chunk, probs, strict=True), start):
            k = max(range(len(p)), key=p.__getitem__)
            answer = classifier.labels[k]
            samples.append(
                {
                    "index": i,
                    "prompt": row["text"] + (f" || {row['text_pair']}" if row["text_pair"] else ""),
                    "reference": row["label"],
                    "answer": answer,
                    "score": float(answer == row["label"]),
                    "detail": {"probability": round(float(p[k]), 6)},
                }
            )
        if progress:
            progress(len(chunk))
    return samples


def scores(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, macro P/R/F1 and the confusion matrix over the labels seen (true or predicted)."""
    from backend.metrics import classification_metrics

    labels = sorted({s["reference"] for s in samples} | {s["answer"] for s in samples})
    index = {label: i for i, label in enumerate(labels)}
    truth, predicted = [index[s["reference"]] for s in samples], [index[s["answer"]] for s in samples]
    return classification_metrics(truth, predicted, labels)
