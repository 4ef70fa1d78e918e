"""Export tab: a completed run in the formats its task allows, each verified before it is offered as a zip,
with a table of what every export of the run measured (size, load time, latency, quality delta)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend.export.exporter import FORMATS, export_run, formats_for, list_exports
from backend.runs.queue import get_run
from backend.services import Services
from webui.feedback import refuse, warn
from webui.i18n import L, t
from webui.tabs import export_compress

COLUMNS = ("format", "size", "load", "latency", "quality", "where")  # headers: export.col_<name>


def format_choices(allowed: tuple[str, ...] = FORMATS) -> list[tuple]:
    return [(L(f"export.format_{name.replace('-', '_')}"), name) for name in FORMATS if name in allowed]


@dataclass
class ExportUI:
    run: gr.Dropdown
    format: gr.Radio
    push_to: gr.Textbox
    go: gr.Button
    result: gr.Markdown
    table: gr.Dataframe
    file: gr.File
    compress: export_compress.CompressUI


def build(services: Services) -> ExportUI:
    run = gr.Dropdown([], label=L("export.run"))
    fmt = gr.Radio(format_choices(), value="merged", label=L("export.format"), info=L("export.format_info"))
    push_to = gr.Textbox(label=L("export.push_to"), info=L("export.push_to_info"), placeholder="owner/name")
    go = gr.Button(L("export.go"), variant="primary")
    result = gr.Markdown()
    table = gr.Dataframe(label=L("export.table"), interactive=False, wrap=True)
    file = gr.File(label=L("export.download"), interactive=False)
    return ExportUI(run, fmt, push_to, go, result, table, file, export_compress.build())


def quality(check: dict[str, Any]) -> str:
    """The quality delta in words: logit difference, plus accuracy change or greedy agreement."""
    parts = [t("export.q_logits", diff=check.get("max_abs_logit_diff", 0.0))]
    if "accuracy_delta" in check:
        parts.append(
            t("export.q_accuracy", before=check["source_accuracy"] * 100, after=check["accuracy"] * 100,
              delta=check["accuracy_delta"] * 100)
        )  # fmt: skip
    if "greedy_agreement" in check:
        parts.append(t("export.q_greedy", share=check["greedy_agreement"] * 100))
    return "; ".join(parts)


def exports_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per verified export of the run (newest first)."""
    out = []
    for row in rows:
        check = row["verification"]
        latency = f"{check['latency_ms']:.1f} ms" if "latency_ms" in check else ""
        if "source_latency_ms" in check:
            latency += " " + t("export.vs_source", ms=check["source_latency_ms"])
        load = f"{check['load_seconds']:.2f} s" if "load_seconds" in check else ""
        where = _short(row["path"])
        out.append([row["format"], f"{row['size_bytes'] / 1e6:.1f} MB", load, latency, quality(check), where])
    return pd.DataFrame(out, columns=[t(f"export.col_{c}") for c in COLUMNS])


def _short(path: str) -> str:
    where = os.path.relpath(path)
    return path if where.startswith("..") else where  # short inside the app folder, else absolute


def wire(services: Services, ui: ExportUI) -> None:
    def on_run(run_id: int | None, fmt: str | None):
        """Offer only the formats the run's task allows, and show its exports so far."""
        if run_id is None:
            return gr.Radio(choices=format_choices()), exports_table([])
        try:
            task = (get_run(services.database, int(run_id)).config or {}).get("task", "sft")
        except ValueError as e:  # deleted since the list was shown
            return refuse(str(e), 2)
        allowed = formats_for(task)
        value = fmt if fmt in allowed else "merged"
        rows = list_exports(services.database, int(run_id))
        return gr.Radio(choices=format_choices(allowed), value=value), exports_table(rows)

    def on_export(run_id: int | None, fmt: str, push_to: str):
        if run_id is None:
            return refuse(t("common.no_completed_run"), 3)
        try:
            out = export_run(
                services.database, services.workspace, int(run_id), fmt, push_to=(push_to or "").strip() or None
            )
        except (ValueError, OSError) as e:  # a full disk or a permission problem is said, not a traceback
            return refuse(str(e).splitlines()[0], 3)
        except MemoryError:
            return refuse(t("export.out_of_memory"), 3)
        check = out["verification"]
        text = t("export.done", fmt=fmt, run_id=run_id, size_mb=out["size_bytes"] / 1e6, where=_short(out["path"]))
        text += "\n\n" + t("export.verified", quality=quality(check), load=check["load_seconds"])
        if out.get("pushed"):
            text += "\n\n" + t("export.pushed", url=out["pushed"])
        if out.get("push_error"):
            warn(out["push_error"])
        return text, exports_table(list_exports(services.database, int(run_id))), out["zip"]

    private = {"api_visibility": "private"}
    ui.run.change(on_run, [ui.run, ui.format], [ui.format, ui.table], **private)
    ui.go.click(on_export, [ui.run, ui.format, ui.push_to], [ui.result, ui.table, ui.file], **private)
    export_compress.wire(services, ui.compress, ui.run)
