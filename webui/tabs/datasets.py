"""Datasets tab: upload an Alpaca JSON/JSONL file, see it validated and previewed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from backend.data import DataError, dataset_summary, find_dataset, import_file, list_datasets, preview
from backend.services import Services
from webui.feedback import refuse

PREVIEW_ROWS = 20
FORMAT_HELP = (
    "Alpaca format: a JSON array or JSON Lines of "
    '`{"instruction": "...", "input": "(optional)", "output": "...", "system": "(optional)"}`. '
    "Every row is checked before anything is saved; an error names the row and field."
)


@dataclass
class DatasetsUI:
    upload: gr.File
    name: gr.Textbox
    add: gr.Button
    status: gr.Markdown
    table: gr.Dataframe
    chosen: gr.Dropdown
    info: gr.Markdown
    preview: gr.Dataframe


def build(services: Services) -> DatasetsUI:
    gr.Markdown(FORMAT_HELP)
    with gr.Row():
        upload = gr.File(label="Dataset file (.json or .jsonl)", file_types=[".json", ".jsonl"], scale=3)
        with gr.Column(scale=2):
            name = gr.Textbox(label="Name (optional)", placeholder="taken from the file name")
            add = gr.Button("Import", variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(label="Datasets", interactive=False, max_height=220)
    chosen = gr.Dropdown([], label="Preview dataset")
    info = gr.Markdown()
    preview_table = gr.Dataframe(
        headers=["system", "prompt", "answer"],
        label="First rows",
        interactive=False,
        wrap=True,
        column_widths=["20%", "35%", "45%"],
    )
    return DatasetsUI(upload, name, add, status, table, chosen, info, preview_table)


def _names(services: Services) -> list[str]:
    return [d.name for d in list_datasets(services.database)]


def _table(services: Services) -> pd.DataFrame:
    rows = [(d.id, d.name, d.format, d.num_rows, d.source_file) for d in list_datasets(services.database)]
    return pd.DataFrame(rows, columns=["id", "name", "format", "rows", "file"])


def show(services: Services, name: str | None) -> tuple[str, pd.DataFrame]:
    if not name:
        return "", pd.DataFrame(columns=["system", "prompt", "answer"])
    ds = find_dataset(services.database, name)
    s = dataset_summary(ds)["stats"]
    info = (
        f"**{ds.name}**: {ds.num_rows} rows from `{ds.source_file}` · mean prompt {s['mean_prompt_chars']} chars · "
        f"mean answer {s['mean_answer_chars']} chars · {s['duplicate_rows']} duplicate rows · "
        f"{s['multi_turn_rows']} multi-turn rows"
    )
    return info, pd.DataFrame(preview(services.workspace, ds.id, limit=PREVIEW_ROWS))


def refresh(services: Services):
    """Page-load loader: the datasets table, the preview choice (kept, or the newest) and its rows."""

    def load(current: str | None):
        names = _names(services)
        value = current if current in names else (names[0] if names else None)
        info, rows = show(services, value)
        return _table(services), gr.Dropdown(choices=names, value=value), info, rows

    return load


def refreshed(ui: DatasetsUI) -> list:
    return [ui.table, ui.chosen, ui.info, ui.preview]


def wire(services: Services, ui: DatasetsUI, train_ui) -> None:
    def add(path: str | None, name: str):
        if not path:
            return refuse("Choose a .json or .jsonl file first.", len(outputs))
        try:
            ds = import_file(services.database, services.workspace, Path(path), name=name.strip() or None)
        except DataError as e:
            return refuse(str(e), len(outputs))
        gr.Info(f"Imported '{ds.name}': {ds.num_rows} rows.")
        names = _names(services)
        info, rows = show(services, ds.name)
        return (
            f"Imported **{ds.name}** ({ds.num_rows} rows). It is now selectable in **Train**.",
            _table(services),
            gr.Dropdown(choices=names, value=ds.name),
            info,
            rows,
            gr.Dropdown(choices=names),
        )

    outputs = [ui.status, ui.table, ui.chosen, ui.info, ui.preview, train_ui.dataset]
    ui.add.click(add, [ui.upload, ui.name], outputs, api_name="add_dataset")
    ui.chosen.change(lambda n: show(services, n), [ui.chosen], [ui.info, ui.preview], api_visibility="private")
