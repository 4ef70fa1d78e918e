"""Export tab: the LoRA adapter or the merged model, verified, downloadable as a zip."""

from __future__ import annotations

import os
from dataclasses import dataclass

import gradio as gr

from backend.export import export_run
from backend.services import Services
from webui.feedback import refuse

FORMATS = [
    ("Merged model (safetensors + tokenizer + chat template)", "merged"),
    ("LoRA adapter only (small; needs the base model)", "adapter"),
]


@dataclass
class ExportUI:
    run: gr.Dropdown
    format: gr.Radio
    go: gr.Button
    result: gr.Markdown
    file: gr.File


def build(services: Services) -> ExportUI:
    run = gr.Dropdown([], label="Run (completed)")
    fmt = gr.Radio(FORMATS, value="merged", label="Format")
    go = gr.Button("Export", variant="primary")
    result = gr.Markdown()
    file = gr.File(label="Download", interactive=False)
    return ExportUI(run, fmt, go, result, file)


def wire(services: Services, ui: ExportUI) -> None:
    def on_export(run_id: int | None, fmt: str):
        if run_id is None:
            return refuse("No completed run yet: train one in the Train tab first.", 2)
        try:
            out = export_run(services.database, services.workspace, int(run_id), fmt)
        except ValueError as e:
            return refuse(str(e), 2)
        check = out["verification"]
        where = os.path.relpath(out["path"])
        where = out["path"] if where.startswith("..") else where  # short inside the app folder, else absolute
        text = (
            f"Exported **{fmt}** of run {run_id}: {out['size_bytes'] / 1e6:.1f} MB in `{where}`.\n\n"
            f"Verified by loading it back: max logit difference {check['max_abs_logit_diff']:.1e}, "
            f"same next token: {'yes' if check['same_greedy_token'] else 'no'}."
        )
        return text, out["zip"]

    ui.go.click(on_export, [ui.run, ui.format], [ui.result, ui.file], api_visibility="private")
