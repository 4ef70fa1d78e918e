"""Playground sub-tabs for classifiers and datasets: one text or image -> class probabilities (a bar chart),
and a whole dataset split -> metrics plus a CSV of predictions. Thin: backend/playground/predict.py does the work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backend.data import find_dataset, list_datasets
from backend.playground.predict import CLASSIFIERS, batch_predict, classify, run_task
from backend.runs.queue import get_run, list_runs
from backend.services import Services
from webui.feedback import refuse
from webui.i18n import L, t

TOP_K = 5  # image runs: the classes shown; text runs show every class (they are usually few)
SHOWN_ROWS = 20  # predictions previewed under the metrics; the CSV has them all
CSV_COLUMNS = (
    "row",
    "text",
    "file",
    "label",
    "predicted",
    "probability",
    "correct",
    "prompt",
    "reference",
    "prediction",
)
HEADLINE = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "bleu4", "rouge_l")


@dataclass
class ClassifyUI:
    run: gr.Dropdown
    text: gr.Textbox
    image: gr.Image
    go: gr.Button
    result: gr.Label


@dataclass
class BatchUI:
    run: gr.Dropdown
    dataset: gr.Dropdown
    split: gr.Dropdown
    go: gr.Button
    metrics: gr.Markdown
    rows: gr.Dataframe
    csv: gr.File


def build_classify() -> ClassifyUI:
    gr.Markdown(L("playground.classify_intro"))
    run = gr.Dropdown([], label=L("playground.classify_run"), info=L("playground.classify_run_info"))
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=L("playground.classify_text"), lines=4, placeholder=L("playground.classify_ph"))
            image = gr.Image(label=L("playground.classify_image"), type="filepath", visible=False, height=260)
            go = gr.Button(L("playground.classify_go"), variant="primary")
        result = gr.Label(label=L("playground.classify_result"), num_top_classes=TOP_K * 4)
    return ClassifyUI(run, text, image, go, result)


def build_batch() -> BatchUI:
    gr.Markdown(L("playground.batch_intro"))
    with gr.Row():
        run = gr.Dropdown([], label=L("playground.batch_run"), scale=2)
        dataset = gr.Dropdown([], label=L("playground.batch_dataset"), scale=2)
        split = gr.Dropdown([], label=L("playground.batch_split"), scale=1)
    go = gr.Button(L("playground.batch_go"), variant="primary")
    metrics = gr.Markdown()
    csv = gr.File(label=L("playground.batch_csv"), interactive=False)
    rows = gr.Dataframe(label=L("playground.batch_rows"), interactive=False, wrap=True)
    return BatchUI(run, dataset, split, go, metrics, rows, csv)


def run_lists(services: Services, clf: int | None, batch: int | None) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The classifier runs (newest first) and every completed run, the choices kept where still offered."""
    runs = [r for task in CLASSIFIERS for r in list_runs(services.database, status="completed", task=task)]
    classifiers = [(f"#{r.id} {r.name}", r.id) for r in sorted(runs, key=lambda r: -r.id)]
    every = [(f"#{r.id} {r.name}", r.id) for r in list_runs(services.database, status="completed")]
    return _keep(classifiers, clf), _keep(every, batch)


def _keep(choices: list[tuple[str, int]], current: int | None) -> gr.Dropdown:
    ids = [i for _, i in choices]
    return gr.Dropdown(choices=choices, value=current if current in ids else (ids or [None])[0])


def wire(services: Services, c: ClassifyUI, b: BatchUI, memory: gr.Markdown, memory_text) -> None:
    db, ws = services.database, services.workspace
    private = {"api_visibility": "private"}

    def inputs_for(run_id: int | None):
        """Text box for a text classifier, image upload for an image classifier."""
        try:
            task = (get_run(db, int(run_id)).config or {}).get("task") if run_id is not None else None
        except ValueError as e:  # a run deleted since the list was shown
            return refuse(str(e), 3)
        image = task == "image-classification"
        return gr.Textbox(visible=not image), gr.Image(visible=image), gr.Label(value=None)

    def predict_one(run_id: int | None, text: str, image: str | None):
        if run_id is None:
            return refuse(t("playground.classify_none"), 1)
        try:
            task = run_task(db, int(run_id))
            if task == "image-classification":
                if not image:
                    return refuse(t("playground.classify_no_image"), 1)
                out = classify(db, ws, int(run_id), image=image, top_k=TOP_K)
            else:
                if not (text or "").strip():
                    return refuse(t("playground.type_first"), 1)
                out = classify(db, ws, int(run_id), text=text)
        except (ValueError, OSError) as e:
            return refuse(str(e), 1)
        return gr.Label(value=out["probabilities"], num_top_classes=len(out["probabilities"]))

    ran = gr.on([c.go.click, c.text.submit], predict_one, [c.run, c.text, c.image], c.result, **private)
    ran.then(memory_text, None, memory, show_progress="hidden", **private)
    # Another classifier chosen: a result still on its way would belong to the previous one, so it is dropped.
    outputs = [c.text, c.image, c.result]
    c.run.change(inputs_for, c.run, outputs, show_progress="hidden", cancels=[ran], **private)

    def datasets_for(run_id: int | None, current: str | None):
        """Datasets of the run's task, the one it trained on first."""
        if run_id is None:
            return gr.Dropdown(choices=[], value=None)
        try:
            run = get_run(db, int(run_id))
        except ValueError as e:
            return refuse(str(e), 1)
        task = (run.config or {}).get("task", "sft")
        names = [d.name for d in list_datasets(db) if d.task == task]
        own = run.dataset.name if run.dataset is not None and run.dataset.name in names else None
        names = ([own] if own else []) + [n for n in names if n != own]
        return gr.Dropdown(choices=names, value=current if current in names else (names or [None])[0])

    def splits_for(dataset: str | None, current: str | None):
        """The dataset's non-empty splits, the held-out ones first (what a model did not train on)."""
        if not dataset:
            return gr.Dropdown(choices=[], value=None)
        try:
            splits = find_dataset(db, dataset).splits
        except ValueError:
            return gr.Dropdown(choices=[], value=None)
        names = [s for s in ("test", "validation", "train") if splits.get(s)]
        return gr.Dropdown(choices=names, value=current if current in names else (names or [None])[0])

    def predict_all(run_id: int | None, dataset: str | None, split: str | None):
        if run_id is None or not dataset or not split:
            return refuse(t("playground.batch_pick"), 3)
        try:
            out = batch_predict(db, ws, int(run_id), dataset, split)
        except (ValueError, OSError) as e:
            return refuse(str(e), 3)
        return _metrics_markdown(out), out["csv"], _preview(out["csv"])

    b.run.change(datasets_for, [b.run, b.dataset], b.dataset, show_progress="hidden", **private)
    b.dataset.change(splits_for, [b.dataset, b.split], b.split, show_progress="hidden", **private)
    done = b.go.click(predict_all, [b.run, b.dataset, b.split], [b.metrics, b.csv, b.rows], **private)
    done.then(memory_text, None, memory, show_progress="hidden", **private)


def _metrics_markdown(out: dict[str, Any]) -> str:
    m = out["metrics"]
    lines = [
        t("playground.batch_done", rows=out["rows"], dataset=out["dataset"], split=out["split"]),
        "",
        f"| {t('runs.metric')} | {t('playground.batch_value')} |",
        "|---|---|",
    ]
    for key in HEADLINE:
        if key in m:
            value = f"{m[key]:.4f}" if key not in ("bleu4", "rouge_l") else f"{m[key]:.2f}"
            lines.append(f"| {t(f'runs.metric_eval_{key}')} | {value} |")
    if m.get("unscored_rows"):
        lines += ["", t("playground.batch_unscored", n=m["unscored_rows"])]
    return "\n".join(lines)


def _preview(path: str) -> Any:
    """The CSV's first rows, headed in the page's language (the file keeps its stable English column names)."""
    import pandas as pd

    table = pd.read_csv(path, nrows=SHOWN_ROWS)
    return table.rename(columns={c: t(f"playground.col_{c}") for c in table.columns if c in CSV_COLUMNS})
