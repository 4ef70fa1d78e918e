"""Runs tab: every run from the database; the open run's curve, progress, ETA and log, live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend.runs import cancel_run, curve, get_run, list_runs, summary
from backend.services import Services

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
    timer: gr.Timer


def build(services: Services) -> RunsUI:
    table = gr.Dataframe(headers=COLUMNS, label="All runs", interactive=False, max_height=260)
    with gr.Row():
        run = gr.Dropdown(run_choices(services), label="Open run", scale=3)
        cancel = gr.Button("Cancel run", variant="stop", scale=1)
    header = gr.Markdown("Pick a run to see its progress.")
    progress = gr.HTML()
    loss = gr.LinePlot(x="step", y="loss", title="Training loss", height=280, x_title="step", y_title="loss")
    log = gr.Textbox(label="Log (last lines)", lines=8, max_lines=12, autoscroll=True)
    timer = gr.Timer(REFRESH_SECONDS)
    return RunsUI(table, run, header, progress, loss, log, cancel, timer)


def run_choices(services: Services) -> list[tuple[str, int]]:
    return [(f"#{r.id} {r.name} ({r.status.value})", r.id) for r in list_runs(services.database)]


def refresh_choices(services: Services, status: str | None = "completed"):
    """A loader for run dropdowns elsewhere (playground, export): completed runs, newest first."""

    def refresh():
        runs = [r for r in list_runs(services.database) if status is None or r.status.value == status]
        choices = [(f"#{r.id} {r.name}", r.id) for r in runs]
        value = choices[0][1] if choices else None
        return gr.Dropdown(choices=choices, value=value), gr.Dropdown(choices=choices, value=value)

    return refresh


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


def detail(services: Services, run_id: int | None) -> tuple[str, str, pd.DataFrame, str]:
    if run_id is None:
        return "Pick a run to see its progress.", "", pd.DataFrame({"step": [], "loss": []}), ""
    s = summary(get_run(services.database, int(run_id)), services.workspace, detail=True)
    pct = 100 * s["progress"]
    eta = f" · ETA {_duration(s['eta_seconds'])}" if s.get("eta_seconds") else ""
    header = (
        f"### Run {s['id']}: {s['name']}\n**{s['status']}** · {s['method']} on {s['model']} · "
        f"dataset {s['dataset']} · step {s['step']}/{s['total_steps'] or '?'}{eta} · "
        f"elapsed {_duration(s['duration_seconds'])}"
    )
    metrics = s.get("metrics") or {}
    if s["status"] == "completed":
        header += (
            f"\n\nFinal loss **{metrics.get('final_loss')}** · {metrics.get('tokens_per_second')} tokens/s · "
            f"precision {metrics.get('precision')} on {metrics.get('device')}. Try it in **Playground**."
        )
    if s["status"] in ("failed", "interrupted", "cancelled") and s.get("reason"):
        header += f"\n\n**Why:** {s['reason'].splitlines()[0]}"
    bar = f'<div class="tb-progress" title="{pct:.0f}%"><div style="width:{pct:.1f}%"></div></div>'
    points = curve(services.database, s["id"], "loss")
    frame = pd.DataFrame(points, columns=["step", "loss"])
    return header, bar, frame, s.get("log_tail", "")


def wire(services: Services, ui: RunsUI) -> None:
    def refresh(run_id: int | None) -> tuple[Any, ...]:
        header, bar, frame, log = detail(services, run_id)
        return runs_table(services), header, bar, frame, log

    def cancel(run_id: int | None):
        if run_id is None:
            raise gr.Error("Pick a run first.")
        try:
            cancel_run(services.database, int(run_id))
        except ValueError as e:
            raise gr.Error(str(e)) from None
        gr.Info(f"Cancelling run {run_id}: it stops at the next step and keeps a checkpoint.")
        return refresh(run_id)

    outputs = [ui.table, ui.header, ui.progress, ui.loss, ui.log]
    ui.timer.tick(refresh, [ui.run], outputs, api_visibility="private", show_progress="hidden")
    ui.run.change(refresh, [ui.run], outputs, api_visibility="private")
    ui.run.focus(
        lambda v: gr.Dropdown(choices=run_choices(services), value=v), [ui.run], [ui.run], api_visibility="private"
    )
    ui.cancel.click(cancel, [ui.run], outputs, api_name="cancel_run")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
