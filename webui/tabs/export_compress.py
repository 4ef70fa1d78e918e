"""The Export tab's Compress section: prune the chosen run into a new run, and a table and a size-vs-accuracy
chart of every compressed variant of it (pruned, recovered, distilled students). Each variant is a run of
its own, so the run list above exports it in any format its task allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend.compress.variant import TOLERANCE, compress_run, list_variants
from backend.services import Services
from webui.feedback import inform, refuse
from webui.i18n import L, t

COLUMNS = ("run", "kind", "params", "size", "latency", "accuracy", "flag")  # headers: compress.col_<name>


@dataclass
class CompressUI:
    prune: gr.Textbox
    recover_steps: gr.Number
    tolerance: gr.Number
    go: gr.Button
    table: gr.Dataframe
    plot: gr.ScatterPlot


def build() -> CompressUI:
    with gr.Accordion(L("compress.title"), open=False):
        gr.Markdown(L("compress.info"))
        with gr.Row():
            prune = gr.Textbox(label=L("compress.prune"), info=L("compress.prune_info"), placeholder="neurons:0.3")
            recover = gr.Number(0, label=L("compress.recover_steps"), info=L("compress.recover_info"), precision=0)
            tolerance = gr.Number(TOLERANCE, label=L("compress.tolerance"), info=L("compress.tolerance_info"))
        go = gr.Button(L("compress.go"))
        table = gr.Dataframe(label=L("compress.table"), interactive=False, wrap=True)
        plot = gr.ScatterPlot(
            x="size_mb", y="accuracy", color="kind", title=L("compress.plot"), label=L("compress.plot"), height=280,
            x_title=L("compress.size_mb"), y_title=L("compress.accuracy"),
        )  # fmt: skip
    return CompressUI(prune, recover, tolerance, go, table, plot)


def variants_view(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (one row per variant, the original first) and the points of the chart."""
    table, points = [], []
    for r in rows:
        size = r["size_bytes"] / 1e6 if r["size_bytes"] else None
        table.append([
            f"{r['run_id']} · {r['name']}", t(f"compress.kind_{r['kind'].replace('+', '_')}"),
            f"{r['params'] / 1e6:.2f} M" if r["params"] else "", f"{size:.1f} MB" if size else "",
            f"{r['latency_ms']:.1f} ms" if r["latency_ms"] else "",
            f"{r['accuracy'] * 100:.1f}%" if r["accuracy"] is not None else "",
            t("compress.flagged") if r["flagged"] else "",
        ])  # fmt: skip
        if size and r["accuracy"] is not None:
            points.append({"size_mb": round(size, 1), "accuracy": r["accuracy"], "kind": f"{r['run_id']} {r['kind']}"})
    headers = [t(f"compress.col_{c}") for c in COLUMNS]
    return pd.DataFrame(table, columns=headers), pd.DataFrame(points, columns=["size_mb", "accuracy", "kind"])


def wire(services: Services, ui: CompressUI, run: gr.Dropdown) -> None:
    def on_run(run_id: int | None):
        if run_id is None:
            return variants_view([])
        try:
            return variants_view(list_variants(services.database, services.workspace, int(run_id)))
        except ValueError as e:  # deleted since the list was shown
            return refuse(str(e), 2)

    def on_compress(run_id: int | None, prune: str, recover_steps: float | None, tolerance: float | None):
        if run_id is None:
            return refuse(t("common.no_completed_run"), 2)
        try:
            variant, recovery = compress_run(
                services.database, services.workspace, int(run_id), (prune or "").strip(),
                int(recover_steps or 0), float(TOLERANCE if tolerance is None else tolerance),
            )  # fmt: skip
        except (ValueError, OSError) as e:
            return refuse(str(e).splitlines()[0], 2)
        inform(t("compress.recovering", run_id=recovery) if recovery else t("compress.done", run_id=variant))
        return variants_view(list_variants(services.database, services.workspace, int(run_id)))

    private = {"api_visibility": "private"}
    run.change(on_run, [run], [ui.table, ui.plot], **private)
    ui.go.click(on_compress, [run, ui.prune, ui.recover_steps, ui.tolerance], [ui.table, ui.plot], **private)
