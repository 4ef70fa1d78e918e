"""Search tab: a hyperparameter search (backend.search.studies) started from a table of settings, and its study page.

A row of the space table is one RunConfig setting: ticked, it is searched over its range (low..high, on a
log scale when `log` is ticked) or over its comma-separated choices. Settings not in the table keep their
defaults; the fixed settings row (steps, epochs, validation share, evaluation interval) applies to every
trial. Each trial is an ordinary run: it shows up in the Runs tab and can be opened, compared and exported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from backend.config import DEFAULT_MODELS
from backend.models.catalog import models_for
from backend.search.results import list_studies, study_figures, study_report
from backend.search.studies import SearchOptions, create_study, stop_study
from backend.services import Services
from webui.choices import (
    TASKS,
    cluster_worker_inputs,
    dataset_names,
    form_values,
    method_choices,
    ray_cluster,
    refresh_choices,
)
from webui.feedback import inform, refuse
from webui.i18n import DEFAULT, L, messages, t
from webui.labels import metric_label

DEFAULTS = SearchOptions()
REFRESH_SECONDS = 3.0
ENDED = ("completed", "stopped", "failed")  # a study in these states no longer changes
COLUMNS = ["search", "setting", "type", "low", "high", "log", "choices"]
TYPES = ["float", "int", "categorical"]
# What a person most often searches, ticked where it pays off first (learning rate, LoRA rank).
SPACE_ROWS = [
    [True, "learning_rate", "float", 1e-5, 1e-3, True, ""],
    [True, "lora_rank", "categorical", None, None, False, "8, 16, 32"],
    [False, "lora_alpha", "categorical", None, None, False, "16, 32, 64"],
    [False, "batch_size", "categorical", None, None, False, "4, 8, 16"],
    [False, "epochs", "int", 1, 4, False, ""],
    [False, "warmup_ratio", "float", 0.0, 0.1, False, ""],
    [False, "weight_decay", "float", 0.0, 0.1, False, ""],
    [False, "optimizer", "categorical", None, None, False, "adamw, sgd"],
    [False, "freeze_layers", "int", 1, 4, False, ""],
]
FIXED = ["max_steps", "epochs", "val_ratio", "eval_steps"]
METRICS = {"sft": ["eval_loss", "bleu4", "rouge_l", "train_loss"]}
CLASSIFY_METRICS = ["eval_loss", "accuracy", "f1_macro", "train_loss"]


@dataclass
class SearchUI:
    task: gr.Dropdown
    model: gr.Dropdown
    dataset: gr.Dropdown
    method: gr.Radio
    fixed: dict[str, gr.Number]
    space: gr.Dataframe
    metric: gr.Dropdown
    direction: gr.Radio
    sampler: gr.Radio
    trials: gr.Number
    budget: gr.Number
    prune: gr.Checkbox
    start: gr.Button
    study: gr.Dropdown
    summary: gr.Markdown
    table: gr.Dataframe
    history: gr.Plot
    importance: gr.Plot
    parallel: gr.Plot
    stop: gr.Button
    use_best: gr.Button
    timer: gr.Timer
    at_once: gr.Number | None = None  # trials training side by side (SearchOptions.parallel)
    executor: gr.Radio | None = None  # this machine, or a Ray cluster (offered as the Train tab offers it)
    ray_row: gr.Row | None = None
    ray_settings: tuple = ()  # each trial's workers, CPUs and GPUs per worker


def build(services: Services) -> SearchUI:
    gr.Markdown(L("search.intro"))
    with gr.Row():
        task = gr.Dropdown([(L(label), value) for label, value in TASKS], value="sft", label=L("train.task"))
        model = gr.Dropdown(
            models_for("sft"), value=DEFAULT_MODELS.get("sft"), label=L("train.model"), allow_custom_value=True
        )
        dataset = gr.Dropdown(dataset_names(services, "sft"), value=None, label=L("train.dataset"))
        method = gr.Radio(method_choices(), value="lora", label=L("train.method"))
    with gr.Row():
        fixed = {
            "max_steps": gr.Number(30, precision=0, label=L("train.field.max_steps"), info=L("search.max_steps_info")),
            "epochs": gr.Number(1, label=L("train.field.epochs")),
            "val_ratio": gr.Number(0.1, label=L("train.field.val_ratio"), info=L("search.val_ratio_info")),
            "eval_steps": gr.Number(0, precision=0, label=L("train.field.eval_steps"), info=L("search.eval_info")),
        }
    space = gr.Dataframe(
        value=SPACE_ROWS,
        headers=space_headers(),  # in the page's language once it opens (localize)
        datatype=["bool", "str", "str", "number", "number", "bool", "str"],
        column_count=(len(COLUMNS), "fixed"),
        interactive=True,
        label=L("search.space"),
        show_label=True,
    )
    gr.Markdown(L("search.space_help"))
    with gr.Row():
        metric = gr.Dropdown(METRICS["sft"], value="eval_loss", label=L("search.metric"), allow_custom_value=True)
        direction = gr.Radio(
            [(L("search.minimize"), "minimize"), (L("search.maximize"), "maximize")],
            value="minimize",
            label=L("search.direction"),
        )
        sampler = gr.Radio(
            [
                (L("search.sampler_tpe"), "tpe"),
                (L("search.sampler_random"), "random"),
                (L("search.sampler_grid"), "grid"),
            ],
            value=DEFAULTS.sampler,
            label=L("search.sampler"),
            info=L("search.sampler_info"),
        )
    with gr.Row():
        trials = gr.Number(10, precision=0, label=L("search.trials"), info=L("search.trials_info"))
        budget = gr.Number(0, label=L("search.budget"), info=L("search.budget_info"))
        prune = gr.Checkbox(DEFAULTS.prune, label=L("search.prune"), info=L("search.prune_info"))
        at_once = gr.Number(
            DEFAULTS.parallel, precision=0, minimum=0, label=L("search.at_once"), info=L("search.at_once_info")
        )
    cluster = ray_cluster(services)  # hidden without Ray
    with gr.Row(visible=cluster):
        executor = gr.Radio(
            [(L("train.executor_local"), "local"), (L("train.executor_ray"), "ray")],
            value="local",
            label=L("train.executor"),
            info=L("search.executor_info"),
        )
    with gr.Row(visible=False) as ray_row:
        ray_settings = cluster_worker_inputs()
    start = gr.Button(L("search.start"), variant="primary", size="lg")
    gr.Markdown(L("search.studies"))
    with gr.Row(equal_height=True):
        study = gr.Dropdown([], label=L("search.study"), scale=4)
        stop = gr.Button(L("search.stop"), variant="stop", scale=1, elem_classes="tb-inline-button")
        use_best = gr.Button(L("search.use_best"), scale=1, elem_classes="tb-inline-button")
    summary = gr.Markdown()
    table = gr.Dataframe(interactive=False, label=L("search.trials_table"), wrap=True, visible=False)
    with gr.Row():
        history = gr.Plot(label=L("search.history"))
        importance = gr.Plot(label=L("search.importance"))
    parallel = gr.Plot(label=L("search.parallel"))
    timer = gr.Timer(REFRESH_SECONDS)
    return SearchUI(
        task, model, dataset, method, fixed, space, metric, direction, sampler, trials, budget, prune, start,
        study, summary, table, history, importance, parallel, stop, use_best, timer,
        at_once=at_once, executor=executor, ray_row=ray_row, ray_settings=ray_settings,
    )  # fmt: skip


def space_from_rows(rows: list[list[Any]]) -> dict[str, Any]:
    """The ticked rows as a space file would write them (checked by backend.search.space)."""
    space: dict[str, Any] = {}
    for row in rows:
        on, name, kind, low, high, log, choices = (list(row) + [None] * len(COLUMNS))[: len(COLUMNS)]
        if not on or not str(name or "").strip():
            continue
        name, kind = str(name).strip(), str(kind or "").strip()
        if kind == "categorical":
            try:
                items = [yaml.safe_load(c.strip()) for c in str(choices or "").split(",") if c.strip()]
            except yaml.YAMLError:
                raise ValueError(f"search space: '{name}' choices {choices!r} are not a list like 8, 16, 32") from None
            space[name] = {"type": kind, "choices": items}
        else:
            space[name] = {"type": kind, "low": _number(low), "high": _number(high), "log": bool(log)}
    return space


def _number(value: Any) -> Any:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # refused by name in backend.search.space


def choices(services: Services) -> list[tuple[str, int]]:
    studies = list_studies(services.database)
    return [(f"#{s['id']} {s['name']} · {t('search.status_' + s['status'])}", s["id"]) for s in studies]


def page(services: Services, study_id: int | None, report: dict[str, Any] | None = None) -> tuple:
    """Summary, trials table and the three plots of one study (its `report` when already read), and what
    was drawn (see _drawn)."""
    if study_id is None:
        return t("search.none"), gr.Dataframe(visible=False), None, None, None, None
    try:
        report = report or study_report(services.database, services.workspace, int(study_id))
        figures = study_figures(services.database, services.workspace, int(study_id))
    except (ValueError, KeyError):  # deleted, or still preparing (its Optuna study is not written yet)
        return t("search.none"), gr.Dataframe(visible=False), None, None, None, None
    plots = figures["history"], figures["importance"], figures["parallel"]
    return _summary(report), gr.Dataframe(_trials(report), visible=True), *plots, _drawn(report)


def _drawn(report: dict[str, Any]) -> list:
    """What the page shows of a study: redrawn only when this changes (a trial ends, reports, is pruned)."""
    return [report["id"], report["status"], [[x["state"], x["value"], x["evaluations"]] for x in report["trials"]]]


def _summary(r: dict[str, Any]) -> str:
    done = sum(1 for x in r["trials"] if x["state"] in ("complete", "pruned", "fail"))
    lines = [
        t("search.summary", id=r["id"], name=r["name"], status=t(f"search.status_{r['status']}")),
        t("search.progress", done=done, planned=r["trials_planned"], metric=r["metric"], direction=r["direction"]),
    ]
    if r["best_value"] is not None:
        params = ", ".join(f"{k} = {_fmt(v)}" for k, v in r["best_params"].items())
        lines.append(t("search.best", value=_fmt(r["best_value"]), run_id=r["best_run_id"], params=params))
    if r["reason"]:
        lines.append(t("search.reason", reason=r["reason"]))
    return "\n\n".join(lines)


def _trials(r: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: number, run, state, objective value, then each searched setting."""
    names = sorted({k for x in r["trials"] for k in x["params"]})
    rows = [
        [x["number"], x["run_id"], t(f"search.state_{x['state']}"), _fmt(x["value"])]
        + [_fmt(x["params"].get(k)) for k in names]
        for x in r["trials"]
    ]
    head = [t("search.col_trial"), t("search.col_run"), t("search.col_state"), metric_label(r["metric"], False)]
    return pd.DataFrame(rows, columns=head + [_setting(k) for k in names])


def _setting(key: str) -> str:
    """A searched setting as a column header: its Train label without the hint in brackets, and its name."""
    name = f"train.field.{key}"
    if name not in messages(DEFAULT):
        return key
    return f"{re.split(r' ?[（(]', t(name))[0]} ({key})"


def space_headers() -> list[str]:
    return [t(f"search.col_{c}") for c in COLUMNS]


def localize() -> gr.Dataframe:
    """On page load: the space table's headers in the page's language (build time knows no language)."""
    return gr.Dataframe(value=SPACE_ROWS, headers=space_headers())


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def wire(services: Services, ui: SearchUI, train_ui: Any, tabs: gr.Tabs) -> None:
    private = {"api_visibility": "private"}
    shown = [ui.summary, ui.table, ui.history, ui.importance, ui.parallel]

    def switch_task(task: str):
        metrics = METRICS.get(task, CLASSIFY_METRICS)
        method = "full" if task == "image-classification" else "lora"
        return (
            gr.Dropdown(choices=models_for(task), value=DEFAULT_MODELS.get(task)),
            refresh_choices(services)(None, task),  # the Train tab's list of the task's datasets
            gr.Radio(value=method),
            gr.Dropdown(choices=metrics, value=metrics[0]),
        )

    ui.task.input(switch_task, [ui.task], [ui.model, ui.dataset, ui.method, ui.metric], **private)
    ui.metric.input(
        lambda m: "minimize" if str(m).endswith("loss") else "maximize", [ui.metric], [ui.direction], **private
    )

    ui.executor.change(lambda e: gr.Row(visible=e == "ray"), [ui.executor], [ui.ray_row], **private)

    def start(task, model, dataset, method, space_rows, metric, direction, sampler, n, budget, prune, at_once,
              executor, workers, worker_cpus, worker_gpus, *fixed):  # fmt: skip
        try:
            cluster = {"workers": int(workers or 1), "worker_cpus": worker_cpus, "worker_gpus": worker_gpus}
            settings = {"task": task, "model": model, "dataset": dataset or "", "method": method}
            settings.update({k: v for k, v in zip(FIXED, fixed, strict=True) if v is not None})
            rows = space_rows.values.tolist() if isinstance(space_rows, pd.DataFrame) else space_rows
            options = SearchOptions(
                metric=metric, direction=direction, sampler=sampler, trials=int(n or 0),
                timeout_minutes=float(budget or 0), prune=bool(prune), parallel=int(at_once or 0),
                executor=executor or "local", **(cluster if executor == "ray" else {}),
            )  # fmt: skip
            row = create_study(services.database, services.workspace, settings, space_from_rows(rows), options)
        except ValueError as e:
            return refuse(str(e), 1)
        inform(t("search.started", id=row.id, trials=row.config["trials"]))
        return gr.Dropdown(choices=choices(services), value=row.id)  # its page opens through .change

    inputs = [ui.task, ui.model, ui.dataset, ui.method, ui.space, ui.metric, ui.direction, ui.sampler]
    inputs += [ui.trials, ui.budget, ui.prune, ui.at_once, ui.executor, *ui.ray_settings, *ui.fixed.values()]
    ui.start.click(start, inputs, [ui.study], **private)

    drawn = gr.State(None)

    def show(study_id):
        return page(services, study_id)

    ui.study.change(show, [ui.study], [*shown, drawn], **private)

    def refresh(study_id, before):
        """Redraw the chosen study when it changed (also the once it ends), and the list (statuses change)."""
        ended = before is not None and before[0] == study_id and before[1] in ENDED  # drawn as it stays
        if study_id is None or ended:
            return gr.skip(), *[gr.skip()] * len(shown), gr.skip()
        try:
            report = study_report(services.database, services.workspace, int(study_id))
        except (ValueError, KeyError):  # deleted, or still preparing
            return gr.skip(), *[gr.skip()] * len(shown), gr.skip()
        if _drawn(report) == before:
            return gr.skip(), *[gr.skip()] * len(shown), gr.skip()
        return gr.Dropdown(choices=choices(services)), *page(services, study_id, report)

    ui.timer.tick(refresh, [ui.study, drawn], [ui.study, *shown, drawn], show_progress="hidden", **private)

    def stop(study_id):
        if study_id is None:
            return refuse(t("search.pick"), 2 + len(shown))
        try:
            stop_study(services.database, services.workspace, int(study_id))
        except ValueError as e:
            return refuse(str(e), 2 + len(shown))
        inform(t("search.stopped", id=study_id))
        return gr.Dropdown(choices=choices(services)), *page(services, study_id)

    ui.stop.click(stop, [ui.study], [ui.study, *shown, drawn], **private)

    widgets: dict[str, Any] = train_ui.config_widgets()
    names = list(widgets)

    def use_best(study_id):
        try:
            best = study_id is not None and study_report(services.database, services.workspace, int(study_id))
            if not best or best["best_run_id"] is None:
                return refuse(t("search.no_best"), len(names) + 1)
            values = form_values(services, int(best["best_run_id"]), names)
        except (ValueError, KeyError) as e:  # the search or its best run deleted meanwhile
            return refuse(str(e), len(names) + 1)
        inform(t("search.best_copied", run_id=best["best_run_id"]))
        return *values, gr.Tabs(selected="train")

    ui.use_best.click(use_best, [ui.study], [*widgets.values(), tabs], **private)


def refresh_lists(services: Services):
    """When the tab is shown or the page opens: the studies and the task's datasets (kept if still there)."""

    def refresh(study_id, task, dataset):
        listed = choices(services)
        ids = [i for _, i in listed]
        chosen = study_id if study_id in ids else (ids[0] if ids else None)
        return gr.Dropdown(choices=listed, value=chosen), refresh_choices(services)(dataset, task)

    return refresh
