"""Compare 2-5 runs: overlaid curves, a settings table with the differences highlighted, results side by side."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend import actions
from backend.runs.query import MAX_COMPARE, RunsNotFound
from backend.services import Services
from webui.feedback import refuse
from webui.i18n import L, t
from webui.tabs import runs_views as views

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea"]  # one color per compared run (at most 5)
# The plot's series are slots 1-5, never run names: Gradio 6 fixes a plot's colour domain at its first
# data, so a run added in a later comparison would be drawn in no colour at all.
SLOTS = [str(i + 1) for i in range(MAX_COMPARE)]


def curve_plot(frame: Any, metric: str | None) -> gr.LinePlot:
    """A plot update with translated axis titles (Gradio translates labels, not axis titles) named for the curve."""
    return gr.LinePlot(value=frame, x_title=t("runs.step_axis"), y_title=metric or t("runs.value"))


@dataclass
class CompareUI:
    runs: gr.Dropdown
    metric: gr.Dropdown
    go: gr.Button
    plot: gr.LinePlot
    legend: gr.HTML
    diff: gr.HTML
    metrics: gr.Dataframe


def build(services: Services) -> CompareUI:
    with gr.Row():
        runs = gr.Dropdown(
            _choices(services),
            multiselect=True,
            max_choices=MAX_COMPARE,
            label=L("runs.compare_runs"),
            info=L("runs.compare_info"),
            scale=4,
        )
        metric = gr.Dropdown(["loss"], value="loss", label=L("runs.curve"), scale=1)
        go = gr.Button(L("runs.compare_go"), variant="primary", scale=1)
    plot = gr.LinePlot(
        x="step",
        y="value",
        color="series",
        color_map=dict(zip(SLOTS, PALETTE, strict=True)),
        colors_in_legend=[],  # the legend below names the runs (the plot's own would say 1-5)
        tooltip=["run"],
        height=320,
        x_title=" ",
        y_title=" ",
        label=L("runs.compare_plot"),
    )
    legend = gr.HTML()
    # hidden until a comparison fills it (an empty Dataframe shows placeholder columns "1 2 3")
    metrics = gr.Dataframe(interactive=False, label=L("runs.compare_metrics"), wrap=True, visible=False)
    diff = gr.HTML()
    return CompareUI(runs, metric, go, plot, legend, diff, metrics)


def slotted(frame: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Series renamed to the runs' slots (their names move to a `run` column, for the tooltip), after one
    empty point per slot, so every slot is in the colour domain from the first comparison on."""
    frame = frame.assign(run=frame["series"], series=frame["series"].map(dict(zip(runs, SLOTS, strict=False))))
    start = int(frame["step"].min()) if len(frame) else 0
    blanks = pd.DataFrame({"step": start, "value": float("nan"), "series": SLOTS, "run": ""})
    return pd.concat([blanks, frame], ignore_index=True).astype({"step": "int64", "value": "float64"})


PICKER_SIZE = 200  # newest runs offered; the run list's filters and search add theirs first


def _choices(
    services: Services, chosen: list[int] | None = None, filters: dict[str, str | None] | None = None
) -> list[tuple[str, int]]:
    """The runs that match the run list's filters and search first (so with thousands of runs a user narrows
    the list and then picks from it), then the newest runs, then any already chosen; each run once."""
    narrowed = any(filters.values()) if filters else False
    rows = actions.list_runs(services, **filters, limit=PICKER_SIZE) if narrowed else []
    by_id: dict[int, dict[str, Any]] = {}
    for r in rows + actions.list_runs(services, limit=PICKER_SIZE):
        by_id.setdefault(r["id"], r)
    for run_id in (int(x) for x in chosen or []):
        if run_id not in by_id:
            by_id[run_id] = _light(services, run_id)
    return [(_label(r), run_id) for run_id, r in by_id.items()]


def _light(services: Services, run_id: int) -> dict[str, Any]:
    """A chosen run's summary, without reading its files (deleted: Compare names it when asked)."""
    from backend.runs.queue import get_run, summary

    try:
        return summary(get_run(services.database, run_id))
    except ValueError:
        return {"id": run_id, "name": "", "status": None}


def _label(run: dict[str, Any]) -> str:
    text = f"#{run['id']} {run['name']}".rstrip()
    return f"{text} ({t('runs.status_' + run['status'])})" if run["status"] else text


def compare(services: Services, run_ids: list[int] | None, metric: str | None) -> tuple[Any, ...]:
    ids = [int(i) for i in run_ids or []]
    if len(ids) < 2:
        return refuse(t("runs.compare_pick"), 5)
    try:
        out = actions.compare_runs(services, ids)
    except RunsNotFound as e:  # picked, then deleted (another browser, the CLI)
        return refuse(t("runs.compare_gone", runs=", ".join(f"#{i}" for i in e.missing)), 5)
    except ValueError as e:
        return refuse(str(e), 5)
    names = sorted(out["curves"], key=lambda n: (n != "loss", n))
    chosen = metric if metric in names else (names[0] if names else None)
    label = {str(r["id"]): f"#{r['id']} {r['name']}" for r in out["runs"]}
    colors = {name: PALETTE[i] for i, name in enumerate(label.values())}
    frame = slotted(views.curve_frame(out["curves"], [chosen] if chosen else [], run_label=label), list(label.values()))
    swatches = "".join(
        f'<span style="margin-right:18px;white-space:nowrap"><span style="display:inline-block;width:22px;height:4px;'
        f'background:{color};vertical-align:middle;margin-right:6px"></span>{html.escape(name)}</span>'
        for name, color in colors.items()
    )
    return (
        gr.Dropdown(choices=names or ["loss"], value=chosen or "loss"),
        curve_plot(frame, chosen),
        f"<div>{swatches}</div>",
        views.config_diff_html(out),
        gr.Dataframe(views.metrics_side_by_side(out), visible=True),
    )


def wire(services: Services, ui: CompareUI, filters: list[gr.components.Component]) -> None:
    """`filters`: the run list's status, task, model, dataset and search; the picker offers their matches first."""
    private = {"api_visibility": "private"}
    outputs = [ui.metric, ui.plot, ui.legend, ui.diff, ui.metrics]
    ui.go.click(lambda ids, m: compare(services, ids, m), [ui.runs, ui.metric], outputs, **private)
    ui.metric.input(lambda ids, m: compare(services, ids, m), [ui.runs, ui.metric], outputs, **private)

    def offer(chosen, status, task, model, dataset, search):
        narrowed = dict(status=status, task=task, model=model, dataset=dataset, search=search or "")
        return gr.Dropdown(choices=_choices(services, chosen, narrowed))

    ui.runs.focus(offer, [ui.runs, *filters], [ui.runs], **private)
