"""Runs tab: every run from the database; the open run's curve, progress, ETA and log, live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend.runs import cancel_run, curve, get_run, list_runs, resume_run, summary
from backend.services import Services
from webui.feedback import refuse

COLUMNS = ["id", "name", "status", "model", "dataset", "method", "progress", "duration", "final loss"]
REFRESH_SECONDS = 2.0


@dataclass
class RunsUI:
    table: gr.Dataframe
    run: gr.Dropdown
    header: gr.Markdown
    progress: gr.HTML
    loss: gr.LinePlot
    log: gr.Textbox
    cancel: gr.Button
    resume: gr.Button
    timer: gr.Timer


def build(services: Services) -> RunsUI:
    table = gr.Dataframe(headers=COLUMNS, label="All runs", interactive=False, max_height=260)
    with gr.Row():
        run = gr.Dropdown(run_choices(services), label="Open run", scale=3)
        cancel = gr.Button("Cancel run", variant="stop", scale=1, interactive=False)
        resume = gr.Button("Resume run", scale=1, interactive=False)
    header = gr.Markdown("Pick a run to see its progress.")
    progress = gr.HTML()
    loss = gr.LinePlot(x="step", y="loss", title="Training loss", height=280, x_title="step", y_title="loss")
    log = gr.Textbox(label="Log (last lines)", lines=8, max_lines=12, autoscroll=True)
    timer = gr.Timer(REFRESH_SECONDS)
    return RunsUI(table, run, header, progress, loss, log, cancel, resume, timer)


def run_choices(services: Services) -> list[tuple[str, int]]:
    return [(f"#{r.id} {r.name}", r.id) for r in list_runs(services.database)]


def completed_runs(services: Services, current: int | None = None) -> gr.Dropdown:
    """The run dropdown of Playground and Export: completed runs, newest first, keeping the choice."""
    choices = [(f"#{r.id} {r.name}", r.id) for r in list_runs(services.database, status="completed")]
    ids = [run_id for _, run_id in choices]
    if current in ids:  # leave the value alone: the user may have picked another meanwhile
        return gr.Dropdown(choices=choices)
    return gr.Dropdown(choices=choices, value=ids[0] if ids else None)


def runs_table(services: Services) -> pd.DataFrame:
    rows = []
    for r in list_runs(services.database):
        s = summary(r)
        rows.append(
            [
                s["id"],
                s["name"],
                s["status"],
                s["model"],
                s["dataset"],
                s["method"],
                f"{s['step']}/{s['total_steps']}" if s["total_steps"] else "",
                _duration(s["duration_seconds"]),
                s["final_loss"] if s["final_loss"] is not None else "",
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _loss_frame(points: list[tuple[int, float]]) -> pd.DataFrame:
    """Typed columns even when empty: an untyped empty frame makes the plot treat numbers as labels."""
    frame = pd.DataFrame(points, columns=["step", "loss"])
    return frame.astype({"step": "int64", "loss": "float64"})


CANCELLABLE = ("queued", "running")
RESUMABLE = ("interrupted", "failed", "cancelled")


def detail(services: Services, run_id: int | None) -> tuple[str, str, pd.DataFrame, str, str]:
    """Header, progress bar, loss curve, log tail and status of one run."""
    if run_id is None:
        return "Pick a run to see its progress.", "", _loss_frame([]), "", ""
    s = summary(get_run(services.database, int(run_id)), services.workspace, detail=True)
    pct = 100 * s["progress"]
    if s["status"] == "queued":
        where = "waiting for a free slot"
    else:
        eta = f" · ETA {_duration(s['eta_seconds'])}" if s.get("eta_seconds") else ""
        where = f"step {s['step']}/{s['total_steps'] or '?'}{eta} · elapsed {_duration(s['duration_seconds'])}"
    header = (
        f"### Run {s['id']}: {s['name']}\n**{s['status']}** · {s['method']} on {s['model']} · "
        f"dataset {s['dataset']} · {where}"
    )
    metrics = s.get("metrics") or {}
    if s["status"] == "completed":
        header += (
            f"\n\nFinal loss **{metrics.get('final_loss')}** · {metrics.get('tokens_per_second')} tokens/s · "
            f"precision {metrics.get('precision')} on {metrics.get('device')}. Try it in **Playground**."
        )
    if s["status"] in RESUMABLE and s.get("reason"):
        header += f"\n\n**Why:** {s['reason'].splitlines()[0]}"
    if s["status"] in RESUMABLE:
        header += " · **Resume run** continues from the last checkpoint, if there is one."
    bar = f'<div class="tb-progress" title="{pct:.0f}%"><div style="width:{pct:.1f}%"></div></div>'
    frame = _loss_frame(curve(services.database, s["id"], "loss"))
    return header, bar, frame, s.get("log_tail", ""), s["status"]


def wire(services: Services, ui: RunsUI) -> None:
    def refresh(run_id: int | None) -> tuple[Any, ...]:
        header, bar, frame, log, status = detail(services, run_id)
        buttons = gr.Button(interactive=status in CANCELLABLE), gr.Button(interactive=status in RESUMABLE)
        return runs_table(services), header, bar, frame, log, *buttons

    def act(action, message: str):
        def handler(run_id: int | None):
            if run_id is None:
                return refuse("Pick a run first.", len(outputs))
            try:
                action(services.database, int(run_id))
            except ValueError as e:
                return refuse(str(e), len(outputs))
            gr.Info(message.format(run_id))
            return refresh(run_id)

        return handler

    outputs = [ui.table, ui.header, ui.progress, ui.loss, ui.log, ui.cancel, ui.resume]
    ui.timer.tick(refresh, [ui.run], outputs, api_visibility="private", show_progress="hidden")
    ui.run.change(refresh, [ui.run], outputs, api_visibility="private")
    ui.run.focus(
        lambda v: gr.Dropdown(choices=run_choices(services), value=v), [ui.run], [ui.run], api_visibility="private"
    )
    cancel = act(cancel_run, "Cancelling run {}: it stops at the next step and keeps a checkpoint.")
    resume = act(resume_run, "Run {} queued again; it continues from its last checkpoint.")
    ui.cancel.click(cancel, [ui.run], outputs, api_visibility="private")
    ui.resume.click(resume, [ui.run], outputs, api_visibility="private")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
