"""Predictions from a completed run's model: one text or image, or a whole dataset split.

    classify(database, workspace, 5, text="My card was charged twice")   # label probabilities
    classify(database, workspace, 6, image=png_bytes, top_k=5)          # top-k classes
    batch_predict(database, workspace, 5, "tickets", "test")            # metrics + a CSV of predictions

Classifiers load through the playground's model cache (backend.playground.cache). Batch metrics come
from the engine's own functions (backend.metrics for classifiers, BLEU-4/ROUGE-L of greedy answers
for chat runs), so they read like the run's validation scores. Predictions are written as CSV under
workspace/predictions/ (or `out`), in one go: a failed prediction leaves no file.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import cpu
from backend.playground.cache import CACHE
from backend.workspace import Workspace
from db import Database

log = logging.getLogger(__name__)

CLASSIFIERS = ("text-classification", "image-classification")
BATCH = 32


@dataclass
class Classifier:
    task: str
    model: Any
    processor: Any  # the tokenizer (text) or the eval transform (images)
    labels: list[str]
    max_length: int = 512


def run_task(database: Database, run_id: int) -> str:
    """The run's task ('sft', 'text-classification', ...); refuses a run that has no model to use."""
    from backend.runs.queue import get_run

    run = get_run(database, run_id)
    if run.status.value != "completed":
        raise ValueError(
            f"run {run_id} is {run.status.value}; only a completed run predicts (wait for it, or train one)"
        )
    return (run.config or {}).get("task", "sft")


def load_classifier(database: Database, workspace: Workspace, run_id: int) -> Classifier:
    """A completed classification run's model, cached with the chat models under one memory bound."""
    from backend.playground.chat import cache_key, source_label
    from backend.runs.queue import get_run
    from backend.runs.results import model_folder

    task = run_task(database, run_id)
    if task not in CLASSIFIERS:
        raise ValueError(f"run {run_id} is a {task} run, not a classifier; chat with it in the playground instead")
    base, adapter, code = model_folder(database, workspace, run_id)
    cutoff = int((get_run(database, run_id).config or {}).get("cutoff_len") or 512)

    def loader() -> Classifier:
        if task == "image-classification":
            return _load_image(adapter or base)
        return _load_text(base, adapter, code, cutoff)

    key = cache_key(database, workspace, run_id, "classifier")
    return CACHE.get(key, source_label(database, run_id), loader, lambda c: _bytes(c.model))


def score_answer(database: Database, workspace: Workspace, run_id: int, prompt: str, answer: str) -> dict[str, Any]:
    """A completed reward run's score of `answer` to `prompt` (higher: the answer it prefers), the same
    scorer a GRPO run uses for `reward_model:RUN`."""
    from backend.runs.results import model_folder
    from backend.tasks.grpo import reward_model_scorer

    base, adapter, _ = model_folder(database, workspace, run_id)
    with cpu.lease():
        scorer = reward_model_scorer(str(adapter or base))
        score = scorer([prompt], [answer])[0]
    return {"task": "reward", "run_id": run_id, "prompt": prompt, "answer": answer, "score": round(float(score), 4)}


def _bytes(model: Any) -> int:
    from backend.playground.cache import model_bytes

    return model_bytes(model)


def _load_text(base: Path, adapter: Path | None, code: bool, cutoff: int) -> Classifier:
    """A sequence classifier; a LoRA adapter (head included) goes on a base rebuilt with the run's classes."""
    from backend.export.sources import text_classifier
    from backend.tasks.text_classification import load_tokenizer

    tokenizer = load_tokenizer(adapter or base, code)  # with the pad token training gave it
    model = text_classifier(base, adapter, code, tokenizer)
    if adapter is not None:
        model = model.merge_and_unload()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    limit = min(cutoff, getattr(model.config, "max_position_embeddings", None) or cutoff)
    return Classifier("text-classification", model.eval(), tokenizer, labels, limit)


def _load_image(folder: Path) -> Classifier:
    from backend.tasks import image_classification as ic
    from backend.tasks.image_data import eval_transforms

    model, spec = ic.load_model(folder)
    return Classifier("image-classification", model, eval_transforms(spec), spec["classes"])


def probabilities(clf: Classifier, items: list[Any], pairs: list[str | None] | None = None) -> list[list[float]]:
    """Class probabilities (softmax of the logits) for texts, or for images (encoded bytes), in batches."""
    import torch

    out: list[list[float]] = []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        if clf.task == "text-classification":
            second = pairs[start : start + BATCH] if pairs and any(pairs) else None
            inputs = clf.processor(
                chunk, second, truncation=True, max_length=clf.max_length, padding=True, return_tensors="pt"
            )
            inputs = dict(inputs)
        else:
            from backend.tasks.image_data import decode

            images = [decode(b, f"image {start + i + 1}") for i, b in enumerate(chunk)]
            inputs = {"pixel_values": torch.stack([clf.processor(im) for im in images])}
        with torch.no_grad(), cpu.lease():  # a share of the cores while runs train (backend.cpu)
            logits = clf.model(**inputs).logits.float()
        out += torch.softmax(logits, dim=-1).tolist()
    return out


def classify(
    database: Database,
    workspace: Workspace,
    run_id: int,
    text: str | None = None,
    image: bytes | str | Path | None = None,
    top_k: int = 0,
) -> dict[str, Any]:
    """One text or image through a classification run: {label: probability}, likeliest first (top_k: 0 = all)."""
    task = run_task(database, run_id)
    if task == "text-classification":
        if image is not None:
            raise ValueError(f"run {run_id} classifies text; give a text (--prompt TEXT), not an image")
        if not (text or "").strip():
            raise ValueError(f"run {run_id} classifies text; the text is empty")
        items: list[Any] = [text]
    elif task == "image-classification":
        if image is None:
            raise ValueError(f"run {run_id} classifies images; give an image (--image FILE), not a text")
        items = [_image_bytes(image)]
    else:
        raise ValueError(f"run {run_id} is a {task} run, not a classifier; chat with it instead")
    clf = load_classifier(database, workspace, run_id)
    probs = probabilities(clf, items)[0]
    ranked = sorted(zip(clf.labels, probs, strict=True), key=lambda lp: -lp[1])
    ranked = ranked[:top_k] if top_k > 0 else ranked
    return {"run_id": run_id, "task": task, "label": ranked[0][0], "probabilities": dict(ranked)}


def _image_bytes(image: bytes | str | Path) -> bytes:
    if isinstance(image, bytes):
        return image
    path = Path(image).expanduser()
    if not path.is_file():
        raise ValueError(f"image file {path} not found; give the path of a PNG or JPEG")
    return path.read_bytes()


def batch_predict(
    database: Database,
    workspace: Workspace,
    run_id: int,
    dataset: str | int,
    split: str,
    out: str | Path | None = None,
    limit: int = 0,
) -> dict[str, Any]:
    """Predict every row of a dataset split (the first `limit` when > 0), score it, write the CSV."""
    from backend.data import find_dataset
    from backend.data.preview import page

    task = run_task(database, run_id)
    ds = find_dataset(database, dataset)
    if ds.task != task:
        raise ValueError(
            f"dataset '{ds.name}' is a {ds.task} dataset but run {run_id} is a {task} run; pick a {task} dataset"
        )
    if split not in ds.splits or not ds.splits[split]:
        have = ", ".join(s for s, n in ds.splits.items() if n)
        raise ValueError(f"dataset '{ds.name}' has no '{split}' split; it has {have}")
    target = _csv_target(workspace, run_id, ds.name, split, out)
    rows = page(workspace, ds.id, split, 0, limit if limit > 0 else ds.splits[split])
    if task in CLASSIFIERS:
        header, table, metrics = _classify_rows(load_classifier(database, workspace, run_id), rows)
    else:
        header, table, metrics = _answer_rows(database, workspace, run_id, rows)
    _write_csv(target, header, table)
    log.info("run %d on %s/%s: %d rows, %s -> %s", run_id, ds.name, split, len(table), metrics, target)
    return {
        "run_id": run_id,
        "task": task,
        "dataset": ds.name,
        "split": split,
        "rows": len(table),
        "metrics": metrics,
        "csv": str(target),
    }


def _classify_rows(clf: Classifier, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    from backend.metrics import classification_metrics

    if clf.task == "text-classification":
        shown = [r["text"] for r in rows]
        probs = probabilities(clf, shown, [r.get("text_pair") or None for r in rows])
    else:
        shown = [r.get("file") or f"row {i}" for i, r in enumerate(rows, start=1)]
        probs = probabilities(clf, [r["image"] for r in rows])
    index = {name: i for i, name in enumerate(clf.labels)}
    predicted = [max(range(len(p)), key=p.__getitem__) for p in probs]
    table = [
        [i, what, str(r["label"]), clf.labels[k], round(p[k], 6), str(r["label"]) == clf.labels[k]]
        for i, (r, what, p, k) in enumerate(zip(rows, shown, probs, predicted, strict=True), start=1)
    ]
    # Rows whose class the model never learned cannot be scored against its classes; they are counted.
    known = [(index[str(r["label"])], k) for r, k in zip(rows, predicted, strict=True) if str(r["label"]) in index]
    if not known:
        raise ValueError("none of the split's labels is a class of this run's model; pick the dataset it learned")
    metrics = classification_metrics([t for t, _ in known], [k for _, k in known], clf.labels)
    metrics["unscored_rows"] = len(rows) - len(known)
    column = "text" if clf.task == "text-classification" else "file"
    return ["row", column, "label", "predicted", "probability", "correct"], table, metrics


def _answer_rows(
    database: Database, workspace: Workspace, run_id: int, rows: list[dict[str, Any]]
) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """Greedy answers to each conversation's last question, scored with BLEU-4 and ROUGE-L."""
    from backend.metrics import bleu4, rouge_l
    from backend.playground.chat import load
    from backend.tasks.causal_lm import generate_answers

    if not any("messages" in r for r in rows):
        raise ValueError("this split has plain text rows (pre-training data): there are no questions to answer")
    model, tokenizer = load(database, workspace, run_id)
    prompts, predictions, references = generate_answers(model, tokenizer, rows)
    if not prompts:
        raise ValueError("no row of this split has an answer to compare with")
    table = [[i, *t] for i, t in enumerate(zip(prompts, references, predictions, strict=True), start=1)]
    metrics = {"bleu4": round(bleu4(predictions, references), 2), "rouge_l": round(rouge_l(predictions, references), 2)}
    return ["row", "prompt", "reference", "prediction"], table, metrics


def _csv_target(workspace: Workspace, run_id: int, dataset: str, split: str, out: str | Path | None) -> Path:
    if out:
        target = Path(out).expanduser().resolve()
        if target.is_dir():
            raise ValueError(f"--out {target} is a folder; name a .csv file to write")
        if not target.parent.is_dir():
            raise ValueError(f"--out {target}: folder {target.parent} does not exist; create it or name another")
        return target
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return workspace.root / "predictions" / f"run{run_id}-{safe}-{split}.csv"


def _write_csv(target: Path, header: list[str], table: list[list[Any]]) -> None:
    """All rows at once, through a temporary file renamed into place (no half-written CSV)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(table)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
