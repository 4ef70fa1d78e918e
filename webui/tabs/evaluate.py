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
from webui.choices import ray_cluster, run_choices
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
    choices: gr.Radio
    limit: gr.Number
    executor: gr.Radio
    job_cpus: gr.Number
    job_gpus: gr.Number
    judge: gr.Dropdown
    judge_mode: gr.Dropdown
    rubric: gr.Textbox
    human: gr.File
    start: gr.Button
    chosen: gr.Dropdown
    cancel: gr.Button
    status: gr.Markdown
    results: gr.Dataframe
    chart: gr.BarPlot
    disagreements: gr.Checkbox
    samples: gr.Dataframe
    download: gr.DownloadButton
    timer: gr.Timer


SAMPLE_COLUMNS = ["suite", "index", "prompt", "reference"]  # then each model's answer and score (side_by_side)
COLUMN_ENDS = ((" answer", "col_answer"), (" score", "col_sample_score"), (" verdict", "col_verdict"),
               (" reason", "col_reason"))  # fmt: skip


CELL_CHARS = 240  # longer texts are cut in the table (the CSV download has them whole), so answers stay in view
HEADER_MODEL_CHARS = 28  # a model's name in a column header, cut from the left (a folder's or run's end tells it)


def samples_frame(table: list[dict[str, Any]]) -> pd.DataFrame:
    """The per-sample rows (backend/evaluate/compare.side_by_side) with headers in the page's language;
    long prompts and answers cut to CELL_CHARS, long model names in headers to their last characters."""
    frame = pd.DataFrame(table) if table else pd.DataFrame(columns=SAMPLE_COLUMNS)
    names = {c: t(f"evaluate.col_{c}") for c in SAMPLE_COLUMNS}
    for column in frame.columns:
        for end, key in COLUMN_ENDS:
            if column.endswith(end) and column not in names:
                model = column[: -len(end)]
                model = model if len(model) <= HEADER_MODEL_CHARS else "…" + model[-HEADER_MODEL_CHARS + 1 :]
                names[column] = t(f"evaluate.{key}", model=model)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(_cut)
    return frame.rename(columns=names)


def _cut(value: Any) -> Any:
    return value[: CELL_CHARS - 1] + "…" if isinstance(value, str) and len(value) > CELL_CHARS else value


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
        choices = gr.Radio(
            [(L("evaluate.choices_letters"), "letters"), (L("evaluate.choices_cloze"), "cloze")],
            value="letters",
            label=L("evaluate.choices"),
            info=L("evaluate.choices_info"),
        )
        limit = gr.Number(0, precision=0, minimum=0, label=L("evaluate.limit"))
    cluster = ray_cluster(services)  # hidden without Ray
    with gr.Row(visible=cluster):
        executor = gr.Radio(
            [(L("evaluate.executor_local"), "local"), (L("evaluate.executor_ray"), "ray")],
            value="local",
            label=L("evaluate.executor"),
            scale=2,
        )
        job_cpus = gr.Number(1, minimum=0.1, label=L("evaluate.job_cpus"), scale=1)
        job_gpus = gr.Number(0, minimum=0, label=L("evaluate.job_gpus"), scale=1)
    with gr.Accordion(L("evaluate.judge_title"), open=False), gr.Row():
        judge = gr.Dropdown([], value=None, label=L("evaluate.judge"), info=L("evaluate.judge_info"))
        judge_mode = gr.Dropdown(
            [(L("evaluate.mode_pairwise"), "pairwise"), (L("evaluate.mode_rubric"), "rubric"),
             (L("evaluate.mode_pass"), "pass")],
            value="pairwise",
            label=L("evaluate.judge_mode"),
        )  # fmt: skip
        rubric = gr.Textbox(label=L("evaluate.rubric"), info=L("evaluate.rubric_info"), lines=2)
        human = gr.File(label=L("evaluate.human"), file_types=[".jsonl", ".json"])
    start = gr.Button(L("evaluate.start"), variant="primary")
    with gr.Row():
        chosen = gr.Dropdown([], label=L("evaluate.chosen"), scale=3)
        cancel = gr.Button(L("evaluate.cancel"), variant="stop", scale=0)
    status = gr.Markdown()
    results = gr.Dataframe(label=L("evaluate.results"), interactive=False, wrap=True)
    chart = gr.BarPlot(
        chart_frame({}), x="bar", y="score", sort=None,
        label=L("evaluate.chart"), x_title=" ", y_title=" ", height=320,
    )  # fmt: skip
    with gr.Row():
        disagreements = gr.Checkbox(False, label=L("evaluate.disagreements"))
        download = gr.DownloadButton(L("evaluate.download"), value=None, scale=0)
    samples = gr.Dataframe(label=L("evaluate.samples"), interactive=False, wrap=True, max_height=500)
    timer = gr.Timer(2.0, active=False)
    return EvaluateUI(
        models, folder, suites, upload, metric, fewshot, choices, limit, executor, job_cpus, job_gpus, judge,
        judge_mode, rubric, human, start, chosen, cancel, status, results, chart, disagreements, samples, download,
        timer,
    )  # fmt: skip


def model_choices(services: Services) -> list[tuple[str, str]]:
    """Base chat models, then chat runs (completed ones are what an evaluation accepts)."""
    bases = [(f"{t('evaluate.base')}: {m}", f"base:{m}") for m in actions.base_chat_models(services)]
    return bases + [(label, f"run:{run_id}") for label, run_id in run_choices(services)]


def chart_frame(shown: dict[str, Any]) -> pd.DataFrame:
    """One bar per (suite, model): each suite's models side by side, a model one colour (judges left out)."""
    rows = [
        {"bar": f"{r['suite']} · {r['model']}", "model": r["model"], "suite": r["suite"], "score": r["score"]}
        for r in shown.get("results", [])
        if "judge" not in r
    ]
    return pd.DataFrame(rows, columns=["bar", "model", "suite", "score"]).astype({"score": float})  # a number axis


def judge_text(r: dict[str, Any]) -> str:
    """A judge's result in a line: its tally, and how often it agreed with the human labels."""
    if "judge" not in r:
        return ""
    if "wins" in r:
        text = t("evaluate.judge_tally", wins=r["wins"], losses=r["losses"], ties=r["ties"])
    elif "passed" in r:
        text = t("evaluate.judge_passed", passed=r["passed"], n=r["n"])
    elif "mean_score" in r:
        text = t("evaluate.judge_mean", mean=r["mean_score"])
    else:
        text = ""
    a = r.get("agreement")
    if a:
        kappa = f", κ {a['kappa']:.2f}" if a.get("kappa") is not None else ""
        text += (" · " if text else "") + t("evaluate.judge_agreement", percent=a["percent"], n=a["n"], kappa=kappa)
    return text


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
                t("evaluate.col_difference"): judge_text(r)
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
        # no status in the label: it would go stale while the timer redraws the status line below
        picks = [(f"#{e['id']} {', '.join(e['suites'])} · {', '.join(e['models'])}", e["id"]) for e in rows]
        value = current if current in [p[1] for p in picks] else (picks[0][1] if picks else None)
        return gr.Dropdown(choices=picks, value=value)

    def refresh(current):
        choices = model_choices(services)
        return gr.Dropdown(choices=choices), gr.Dropdown(choices=[("", None), *choices]), evaluations(current)

    tab.select(refresh, [ui.chosen], [ui.models, ui.judge, ui.chosen], **private)
    app.load(refresh, [ui.chosen], [ui.models, ui.judge, ui.chosen], **private)

    def start(models, folder, suites, files, metric, fewshot, choices, limit, executor, cpus, gpus, *judging):
        judge, judge_mode, rubric, human = judging
        refs = [*(models or []), *([folder.strip()] if folder and folder.strip() else [])]
        sources = [*(suites or []), *(getattr(f, "name", f) for f in files or [])]
        human_file = getattr(human, "name", human) or None
        grader = {"model": judge, "mode": judge_mode, "rubric": rubric, "human": human_file} if judge else None
        try:
            shown = actions.evaluate(
                services,
                refs,
                sources,
                metric or None,
                int(fewshot or 0),
                int(limit or 0),
                judge=grader,
                choices=choices or "letters",
                executor=executor or "local",
                cluster={"worker_cpus": cpus, "worker_gpus": gpus} if executor == "ray" else None,
            )
        except ValueError as e:
            return refuse(str(e), 2)
        inform(t("evaluate.queued", id=shown["id"]))
        return evaluations(shown["id"]), gr.Timer(active=True)

    inputs = [ui.models, ui.folder, ui.suites, ui.upload, ui.metric, ui.fewshot, ui.choices, ui.limit, ui.executor]
    inputs += [ui.job_cpus, ui.job_gpus, ui.judge, ui.judge_mode, ui.rubric, ui.human]
    ui.start.click(start, inputs, [ui.chosen, ui.timer], api_visibility="private")

    def show(evaluation_id, disagreements):
        if evaluation_id is None:
            return "", results_frame({}), chart_frame({}), samples_frame([]), None, gr.Timer(active=False)
        shown = actions.evaluation_show(services, int(evaluation_id), bool(disagreements))
        table = side_by_side(shown["samples"])
        path = None
        if table:
            name = f"evaluation-{evaluation_id}{'-disagreements' if disagreements else ''}.csv"
            path = str(write_csv(table, Path(tempfile.gettempdir()) / "tuneboard-evaluations" / name))
        live = shown["status"] in ("queued", "running")
        frames = results_frame(shown), chart_frame(shown), samples_frame(table)
        return status_text(shown), *frames, path, gr.Timer(active=live)

    outputs = [ui.status, ui.results, ui.chart, ui.samples, ui.download, ui.timer]
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
