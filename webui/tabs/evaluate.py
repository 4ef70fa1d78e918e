"""Evaluate tab: pick models and suites, start an evaluation (a background job), follow it, read the results.

Everything goes through backend.actions (evaluate, evaluation_show, evaluation_list, evaluation_cancel), as
the CLI's `evaluate` does; a timer redraws the chosen evaluation every two seconds while the tab is open.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from backend import actions
from backend.actions.evaluate import write_csv
from backend.evaluate.compare import side_by_side
from backend.evaluate.suites import METRICS, SHIPPED
from backend.services import Services
from webui.choices import run_choices
from webui.feedback import inform, refuse
from webui.i18n import L, t


@dataclass
class EvaluateUI:
    models: gr.Dropdown
    folder: gr.Textbox
    suites: gr.Dropdown
    upload: gr.File
    metric: gr.Dropdown
    fewshot: gr.Number
    limit: gr.Number
    start: gr.Button
    chosen: gr.Dropdown
    cancel: gr.Button
    status: gr.Markdown
    results: gr.Dataframe
    disagreements: gr.Checkbox
    samples: gr.Dataframe
    download: gr.DownloadButton
    timer: gr.Timer


SAMPLE_COLUMNS = ["suite", "index", "prompt", "reference"]  # then each model's answer and score (side_by_side)


def samples_frame(table: list[dict[str, Any]]) -> pd.DataFrame:
    """The per-sample rows (backend/evaluate/compare.side_by_side) with headers in the page's language."""
    frame = pd.DataFrame(table) if table else pd.DataFrame(columns=SAMPLE_COLUMNS)
    names = {c: t(f"evaluate.col_{c}") for c in SAMPLE_COLUMNS}
    for column in frame.columns:
        for end, key in ((" answer", "col_answer"), (" score", "col_sample_score")):
            if column.endswith(end) and column not in names:
                names[column] = t(f"evaluate.{key}", model=column[: -len(end)])
    return frame.rename(columns=names)


def build(services: Services) -> EvaluateUI:
    with gr.Row():
        models = gr.Dropdown([], multiselect=True, label=L("evaluate.models"), info=L("evaluate.models_info"))
        folder = gr.Textbox(label=L("evaluate.folder"), placeholder="/path/to/exported/model")
    with gr.Row():
        suites = gr.Dropdown(list(SHIPPED), value=["identity"], multiselect=True, label=L("evaluate.suites"))
        upload = gr.File(label=L("evaluate.upload"), file_types=[".csv", ".jsonl", ".json"], file_count="multiple")
    with gr.Row():
        metric = gr.Dropdown(
            ["", *(m for m in METRICS if m != "regex:PATTERN")],
            value="",
            allow_custom_value=True,
            label=L("evaluate.metric"),
            info=L("evaluate.metric_info"),
        )
        fewshot = gr.Number(0, precision=0, minimum=0, maximum=25, label=L("evaluate.fewshot"))
        limit = gr.Number(0, precision=0, minimum=0, label=L("evaluate.limit"))
        start = gr.Button(L("evaluate.start"), variant="primary")
    with gr.Row():
        chosen = gr.Dropdown([], label=L("evaluate.chosen"), scale=3)
        cancel = gr.Button(L("evaluate.cancel"), variant="stop", scale=0)
    status = gr.Markdown()
    results = gr.Dataframe(label=L("evaluate.results"), interactive=False, wrap=True)
    with gr.Row():
        disagreements = gr.Checkbox(False, label=L("evaluate.disagreements"))
        download = gr.DownloadButton(L("evaluate.download"), value=None, scale=0)
    samples = gr.Dataframe(label=L("evaluate.samples"), interactive=False, wrap=True, max_height=500)
    timer = gr.Timer(2.0, active=False)
    return EvaluateUI(
        models, folder, suites, upload, metric, fewshot, limit, start, chosen, cancel, status, results, disagreements,
        samples, download, timer,
    )  # fmt: skip


def model_choices(services: Services) -> list[tuple[str, str]]:
    """Base chat models, then chat runs (completed ones are what an evaluation accepts)."""
    bases = [(f"{t('evaluate.base')}: {m}", f"base:{m}") for m in actions.base_chat_models(services)]
    return bases + [(label, f"run:{run_id}") for label, run_id in run_choices(services)]


def results_frame(shown: dict[str, Any]) -> pd.DataFrame:
    """Each (model, suite): score and 95% CI, and beside later models the difference from the first."""
    diffs = {(d["model"], d["suite"]): d for d in shown.get("differences", [])}
    rows = []
    for r in shown.get("results", []):
        d = diffs.get((r["model"], r["suite"]))
        rows.append(
            {
                t("evaluate.col_model"): r["model"],
                t("evaluate.col_suite"): r["suite"],
                t("evaluate.col_metric"): r["metric"],
                t("evaluate.col_score"): r["score"],
                "95% CI": f"{r['ci95'][0]:.1f} – {r['ci95'][1]:.1f}",
                "n": r["n"],
                t("evaluate.col_difference"): ""
                if d is None
                else f"{d['difference']:+.1f} ({d['ci95'][0]:+.1f} – "
                f"{d['ci95'][1]:+.1f})" + (f" ⚠ {t('evaluate.regression')}" if d["regression"] else ""),
            }
        )
    return pd.DataFrame(rows, columns=result_columns())


def result_columns() -> list[str]:
    """The results table's headers (shown before any evaluation is picked, too)."""
    names = ("col_model", "col_suite", "col_metric", "col_score")
    return [*(t(f"evaluate.{n}") for n in names), "95% CI", "n", t("evaluate.col_difference")]


def status_text(shown: dict[str, Any]) -> str:
    eta = f" · ETA {round(shown['eta_seconds'])} s" if shown.get("eta_seconds") else ""
    text = t(
        "evaluate.status",
        id=shown["id"],
        status=shown["status"],
        done=shown["done"],
        total=shown["total"],
        percent=round(100 * shown["progress"]),
        eta=eta,
    )
    return text + (f"\n\n{shown['reason']}" if shown.get("reason") and shown["status"] == "failed" else "")


def wire(services: Services, ui: EvaluateUI, tab: gr.Tab, app: gr.Blocks) -> None:
    private = {"api_visibility": "private", "show_progress": "hidden"}

    def evaluations(current: Any = None) -> gr.Dropdown:
        rows = actions.evaluation_list(services)
        picks = [(f"#{e['id']} {', '.join(e['suites'])} · {e['status']}", e["id"]) for e in rows]
        value = current if current in [p[1] for p in picks] else (picks[0][1] if picks else None)
        return gr.Dropdown(choices=picks, value=value)

    def refresh(current):
        return gr.Dropdown(choices=model_choices(services)), evaluations(current)

    tab.select(refresh, [ui.chosen], [ui.models, ui.chosen], **private)
    app.load(refresh, [ui.chosen], [ui.models, ui.chosen], **private)

    def start(models, folder, suites, files, metric, fewshot, limit):
        refs = [*(models or []), *([folder.strip()] if folder and folder.strip() else [])]
        sources = [*(suites or []), *(getattr(f, "name", f) for f in files or [])]
        try:
            shown = actions.evaluate(services, refs, sources, metric or None, int(fewshot or 0), int(limit or 0))
        except ValueError as e:
            return refuse(str(e), 2)
        inform(t("evaluate.queued", id=shown["id"]))
        return evaluations(shown["id"]), gr.Timer(active=True)

    inputs = [ui.models, ui.folder, ui.suites, ui.upload, ui.metric, ui.fewshot, ui.limit]
    ui.start.click(start, inputs, [ui.chosen, ui.timer], api_visibility="private")

    def show(evaluation_id, disagreements):
        if evaluation_id is None:
            return "", results_frame({}), samples_frame([]), None, gr.Timer(active=False)
        shown = actions.evaluation_show(services, int(evaluation_id), bool(disagreements))
        table = side_by_side(shown["samples"])
        path = None
        if table:
            name = f"evaluation-{evaluation_id}{'-disagreements' if disagreements else ''}.csv"
            path = str(write_csv(table, Path(tempfile.gettempdir()) / "tuneboard-evaluations" / name))
        live = shown["status"] in ("queued", "running")
        return status_text(shown), results_frame(shown), samples_frame(table), path, gr.Timer(active=live)

    outputs = [ui.status, ui.results, ui.samples, ui.download, ui.timer]
    # on the tab too: the tables' headers in the page's language before any evaluation is picked
    for trigger in (ui.chosen.change, ui.disagreements.change, ui.timer.tick, tab.select):
        trigger(show, [ui.chosen, ui.disagreements], outputs, **private)

    def cancel(evaluation_id):
        if evaluation_id is None:
            return refuse(t("evaluate.none_chosen"), 1)
        try:
            actions.evaluation_cancel(services, int(evaluation_id))
        except ValueError as e:
            return refuse(str(e), 1)
        return evaluations(evaluation_id)

    ui.cancel.click(cancel, [ui.chosen], [ui.chosen], api_visibility="private")
