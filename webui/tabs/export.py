"""Export tab: the LoRA adapter or the merged model, verified, downloadable as a zip."""

from __future__ import annotations

import os
from dataclasses import dataclass

import gradio as gr

from backend.export import export_run
from backend.services import Services
from webui.feedback import refuse
from webui.i18n import L, t

FORMATS = ("merged", "adapter")  # labels: export.format_<name> in the locale files


def format_choices() -> list[tuple]:
    return [(L(f"export.format_{name}"), name) for name in FORMATS]


@dataclass
class ExportUI:
    run: gr.Dropdown
    format: gr.Radio
    go: gr.Button
    result: gr.Markdown
    file: gr.File


def build(services: Services) -> ExportUI:
    run = gr.Dropdown([], label=L("export.run"))
    fmt = gr.Radio(format_choices(), value="merged", label=L("export.format"))
    go = gr.Button(L("export.go"), variant="primary")
    result = gr.Markdown()
    file = gr.File(label=L("export.download"), interactive=False)
    return ExportUI(run, fmt, go, result, file)


def wire(services: Services, ui: ExportUI) -> None:
    def on_export(run_id: int | None, fmt: str):
        if run_id is None:
            return refuse(t("common.no_completed_run"), 2)
        try:
            out = export_run(services.database, services.workspace, int(run_id), fmt)
        except ValueError as e:
            return refuse(str(e), 2)
        check = out["verification"]
        where = os.path.relpath(out["path"])
        where = out["path"] if where.startswith("..") else where  # short inside the app folder, else absolute
        same = t("export.yes") if check["same_greedy_token"] else t("export.no")
        text = (
            t("export.done", fmt=fmt, run_id=run_id, size_mb=out["size_bytes"] / 1e6, where=where)
            + "\n\n"
            + t("export.verified", diff=check["max_abs_logit_diff"], same=same)
        )
        return text, out["zip"]

    ui.go.click(on_export, [ui.run, ui.format], [ui.result, ui.file], api_visibility="private")
