"""Datasets tab: add a dataset (file, zip, folder path or hub id), map its columns, then browse it.

Import: format auto-detected (or chosen), a column-mapping step for tables, split ratios and seed.
Browse: paginated rows (conversations as chat turns, images as a grid), token lengths under a
model's tokenizer, label distribution, splits, version and hash, delete. Heavy work runs in
Gradio's worker threads through backend.data; nothing here parses files itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from backend import actions
from backend.config import RunConfig
from backend.data import FORMATS, TASKS, DataError, find_dataset, list_datasets
from backend.data.hub import is_hub_id
from backend.data.inspect import inspect_upload
from backend.data.options import check_server_path
from backend.models.catalog import models_for
from backend.services import Services
from webui.feedback import inform, refuse, warn
from webui.i18n import L, t
from webui.tabs import datasets_views as views

UPLOAD_TYPES = [".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".txt", ".zip"]
AUTO = "auto"
COLUMN_FORMATS = ("classification", "text", "")  # "": not recognised, so the person maps the columns


@dataclass
class DatasetsUI:
    upload: gr.File
    source: gr.Textbox
    name: gr.Textbox
    fmt: gr.Dropdown
    task: gr.Dropdown
    text_col: gr.Dropdown
    label_col: gr.Dropdown
    pair_col: gr.Dropdown
    val_ratio: gr.Textbox
    test_ratio: gr.Textbox
    seed: gr.Number
    dedupe: gr.Checkbox
    skip_invalid: gr.Checkbox
    detected: gr.Markdown
    add: gr.Button
    status: gr.Markdown
    table: gr.Dataframe
    chosen: gr.Dropdown
    delete: gr.Button
    confirm: gr.Button
    info: gr.Markdown
    splits: gr.Dataframe
    split: gr.Dropdown
    page_no: gr.Number
    prev: gr.Button
    next: gr.Button
    chat: gr.HTML
    preview: gr.Dataframe
    gallery: gr.Gallery
    model: gr.Dropdown
    cutoff: gr.Number
    measure: gr.Button
    token_row: gr.Row
    tokens_note: gr.Markdown
    tokens_plot: gr.BarPlot
    labels_plot: gr.BarPlot


def build(services: Services) -> DatasetsUI:
    gr.Markdown(L("datasets.intro"))
    with gr.Group():
        with gr.Row():
            upload = gr.File(label=L("datasets.upload"), file_types=UPLOAD_TYPES, scale=3)
            with gr.Column(scale=2):
                source = gr.Textbox(label=L("datasets.source"), placeholder=L("datasets.source_placeholder"))
                name = gr.Textbox(label=L("datasets.name"), placeholder=L("datasets.name_placeholder"))
        with gr.Row():
            fmt = gr.Dropdown(list(FORMATS), value=AUTO, label=L("datasets.format"), info=L("datasets.format_info"))
            task = gr.Dropdown([AUTO, *TASKS], value=AUTO, label=L("datasets.task"), info=L("datasets.task_info"))
            text_col = gr.Dropdown([], label=L("datasets.text_column"), allow_custom_value=True)
            label_col = gr.Dropdown([], label=L("datasets.label_column"), allow_custom_value=True)
            pair_col = gr.Dropdown([], label=L("datasets.pair_column"), allow_custom_value=True)
        detected = gr.Markdown()
        with gr.Row():
            share = {"placeholder": L("datasets.ratio_default"), "info": L("datasets.ratio_info")}
            val_ratio = gr.Textbox(label=L("datasets.val_ratio"), **share)
            test_ratio = gr.Textbox(label=L("datasets.test_ratio"), **share)
            seed = gr.Number(42, precision=0, label=L("datasets.seed"))
            dedupe = gr.Checkbox(False, label=L("datasets.dedupe"))
            skip_invalid = gr.Checkbox(False, label=L("datasets.skip_invalid"), info=L("datasets.skip_invalid_info"))
        add = gr.Button(L("datasets.import"), variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(label=L("datasets.table"), interactive=False, max_height=240)
    with gr.Row(equal_height=True):
        chosen = gr.Dropdown([], label=L("datasets.chosen"), scale=4)
        inline = {"scale": 1, "elem_classes": "tb-inline-button"}
        delete = gr.Button(L("datasets.delete"), variant="secondary", **inline)
        confirm = gr.Button(L("datasets.confirm_delete"), variant="stop", visible=False, **inline)
    info = gr.Markdown()
    splits = gr.Dataframe(label=L("datasets.splits"), interactive=False, max_height=160)
    with gr.Row(equal_height=True):
        split = gr.Dropdown(["train"], value="train", label=L("datasets.split"), scale=2)
        page_no = gr.Number(1, precision=0, minimum=1, label=L("datasets.page"), scale=1)
        prev = gr.Button(L("datasets.prev"), **inline)
        nxt = gr.Button(L("datasets.next"), **inline)
    chat = gr.HTML()
    preview = gr.Dataframe(label=L("datasets.rows"), interactive=False, wrap=True, visible=False)
    gallery = gr.Gallery(label=L("datasets.images"), columns=6, height=440, visible=False)
    with gr.Row(equal_height=True) as token_row:
        model = gr.Dropdown(models_for("sft"), label=L("datasets.model"), allow_custom_value=True, scale=3)
        cutoff = gr.Number(RunConfig().cutoff_len, precision=0, label=L("datasets.cutoff"), scale=1)
        measure = gr.Button(L("datasets.measure"), **inline)
    tokens_note = gr.Markdown()
    with gr.Row():
        tokens_plot = gr.BarPlot(
            x="tokens", y="rows", label=L("datasets.token_plot"), height=260, visible=False, y_lim=[0, None]
        )
        labels_plot = gr.BarPlot(
            x="label", y="rows", color="split", label=L("datasets.label_plot"), height=260, y_lim=[0, None]
        )
    return DatasetsUI(
        upload, source, name, fmt, task, text_col, label_col, pair_col, val_ratio, test_ratio, seed, dedupe,
        skip_invalid, detected, add, status, table, chosen, delete, confirm, info, splits, split, page_no, prev, nxt,
        chat, preview, gallery, model, cutoff, measure, token_row, tokens_note, tokens_plot, labels_plot,
    )  # fmt: skip


# -- what the components show -------------------------------------------------------------------


def measure(
    services: Services, name: str | None, model: str | None, cutoff: float | None, split: str, progress: Any = None
):
    if not name or not model:
        return refuse(t("datasets.pick_model"), 2)
    if progress is not None:  # the first measure loads the tokenizer: several seconds with nothing else to see
        progress(0, desc=t("datasets.measuring", model=model))
    try:
        out = actions.show_dataset(
            services, name, rows=0, split=split or "train", model=model, cutoff_len=int(cutoff or 0)
        )
    except ValueError as e:
        return refuse(str(e), 2)
    tok = out["token_lengths"]
    note = t(
        "datasets.tokens_note", n=tok["rows_measured"], mean=tok["mean"], max=tok["max"],
        over=tok["over_cutoff"], share=f"{100 * tok['share_over_cutoff']:.1f}", cutoff=tok["cutoff"],
    )  # fmt: skip
    note += f"  \n*{tok['note']}*" if tok["note"] else ""
    hist = pd.DataFrame(tok["histogram"], columns=["tokens", "start", "rows"])
    titles = {"x_title": t("datasets.axis_tokens"), "y_title": t("datasets.col_rows")}
    return note, gr.BarPlot(value=hist, sort=list(hist["tokens"]), visible=True, **titles)


def _models(services: Services, name: str | None):
    """The tokenizer choices for the chosen dataset's task; token widgets hidden for images."""
    ds = find_dataset(services.database, name) if name else None
    choices = models_for(ds.task) if ds else []
    text = ds is not None and ds.task != "image-classification"
    dropdown = gr.Dropdown(choices=choices, value=choices[0] if choices else None)
    return dropdown, "", gr.BarPlot(value=None, visible=False), gr.Row(visible=text)  # the plot shows once measured


def refresh(services: Services):
    """Page-load loader: the datasets table, the chosen dataset (kept, or the newest) and its view."""

    def load(current: str | None):
        names = [d.name for d in list_datasets(services.database)]
        value = current if current in names else (names[0] if names else None)
        return views.datasets_table(services), gr.Dropdown(choices=names, value=value), *views.show(services, value)

    return load


def refreshed(ui: DatasetsUI) -> list:
    return [ui.table, ui.chosen, *_shown(ui)]


def _shown(ui: DatasetsUI) -> list:
    return [ui.info, ui.splits, ui.split, ui.chat, ui.preview, ui.gallery, ui.page_no, ui.labels_plot]


def _share(text: str | None, setting: str) -> float | None:
    """A split share typed by a person: empty = the task's default."""
    text = (text or "").strip().rstrip("%")
    if not text or text == "default":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"setting '{setting}': {text!r} is not a number; use a share such as 0.1, or leave it empty"
        ) from None
    return value / 100 if value >= 1 else value


# -- handlers -------------------------------------------------------------------------------------


def wire(services: Services, ui: DatasetsUI, train_ui) -> None:
    def inspect(path: str | None):
        if not path:  # nothing to look at (cleared, or a hub id read at import): the pickers are offered
            shown = gr.Dropdown(visible=True)
            return "", gr.Dropdown(), shown, shown, shown
        try:
            found = inspect_upload(path)
        except (DataError, OSError) as e:
            return refuse(str(e), 5)
        cols = found["columns"]
        shown = found["format"] in COLUMN_FORMATS  # chat data and image zips have no columns to map
        return (
            t("datasets.detected", note=found["note"]) if found["format"] else found["note"],
            gr.Dropdown(value=found["format"] or AUTO),
            gr.Dropdown(choices=cols, value=found["text_column"] or None, visible=shown),
            gr.Dropdown(choices=cols, value=found["label_column"] or None, visible=shown),
            gr.Dropdown(choices=["", *cols], value=found["text_pair_column"] or None, visible=shown),
        )

    mapping = [ui.detected, ui.fmt, ui.text_col, ui.label_col, ui.pair_col]
    ui.upload.change(inspect, [ui.upload], mapping, api_visibility="private")
    # A new file: the last import's line (a warning to choose a file, say) no longer applies.
    ui.upload.upload(lambda: "", None, [ui.status], api_visibility="private")

    def format_chosen(fmt: str):
        """A format picked by hand shows the column pickers when it has columns (auto: shown, to map if needed)."""
        shown = fmt == AUTO or fmt in COLUMN_FORMATS
        return gr.Dropdown(visible=shown), gr.Dropdown(visible=shown), gr.Dropdown(visible=shown)

    ui.fmt.input(format_chosen, [ui.fmt], [ui.text_col, ui.label_col, ui.pair_col], api_visibility="private")

    def inspect_source(source: str | None):
        """The same look at a typed path (inside the data roots); a hub id is read at import."""
        source = (source or "").strip()
        if not source or (is_hub_id(source) and not Path(source).expanduser().exists()):
            return inspect(None)
        try:
            check_server_path(source, services.workspace.root)
        except DataError as e:
            return refuse(str(e), 5)
        return inspect(source)

    ui.source.submit(inspect_source, [ui.source], mapping, api_visibility="private")
    ui.source.blur(inspect_source, [ui.source], mapping, api_visibility="private")

    def add(
        path, name=None, source=None, fmt=None, task=None, text=None, label=None, pair=None,
        val=None, test=None, seed=None, dedupe=None, skip_invalid=None, progress=gr.Progress(),
    ):  # fmt: skip
        """Import the upload (or the typed path / hub id); the first two inputs are the /add_dataset API's."""

        def failed(message: str):
            """A toast, and the status line says it too (not the last import's success); nothing else changes."""
            warn(message)
            return f"⚠️ {message}", gr.skip(), gr.skip(), gr.skip()

        target = path or (source or "").strip()
        if not target:
            return failed(t("datasets.choose_file"))
        if not path and (Path(target).expanduser().exists() or not is_hub_id(target)):  # a path on this server
            try:
                check_server_path(target, services.workspace.root)
            except DataError as e:
                return failed(str(e))
        options = {
            "format": fmt or AUTO, "task": "" if task in (None, AUTO) else task, "text_column": text or "",
            "label_column": label or "", "text_pair_column": pair or "", "val_ratio": None, "test_ratio": None,
            "seed": int(seed if seed is not None else 42), "drop_duplicates": bool(dedupe),
            "skip_invalid": bool(skip_invalid),
        }  # fmt: skip
        try:
            options = {**options, "val_ratio": _share(val, "val_ratio"), "test_ratio": _share(test, "test_ratio")}
            results = actions.add_datasets(
                services, target, (name or "").strip() or None, options, lambda f, what: progress(f, desc=what)
            )
        except (ValueError, OSError) as e:
            return failed(str(e).splitlines()[0])
        for r in results:  # the status line under the button says what was imported; a toast only for surprises
            if not r["created"]:
                warn(r["message"])
        newest = results[-1]["name"]
        names = [d.name for d in list_datasets(services.database)]
        status = "  \n".join(r["message"] for r in results)
        status += "".join(f"  \n{t('datasets.skipped', what=w)}" for w in results[0]["skipped"])
        status += "  \n" + t("datasets.now_in_train") if any(r["created"] for r in results) else ""
        return (
            status,
            views.datasets_table(services),
            gr.Dropdown(choices=names, value=newest),
            gr.Dropdown(choices=names),
        )

    inputs = [ui.upload, ui.name, ui.source, ui.fmt, ui.task, ui.text_col, ui.label_col, ui.pair_col]
    inputs += [ui.val_ratio, ui.test_ratio, ui.seed, ui.dedupe, ui.skip_invalid]
    outputs = [ui.status, ui.table, ui.chosen, train_ui.dataset]
    ui.add.click(add, inputs, outputs, api_name="add_dataset", concurrency_limit=4)

    tokens = [ui.model, ui.tokens_note, ui.tokens_plot, ui.token_row]
    shown = ui.chosen.change(lambda n: views.show(services, n), [ui.chosen], _shown(ui), api_visibility="private")
    shown.then(lambda n: _models(services, n), [ui.chosen], tokens, api_visibility="private")

    def turn(name, split, number, step):
        return views.page_view(services, name, split, (number or 1) + step)

    view = [ui.chat, ui.preview, ui.gallery, ui.page_no]
    private: dict[str, Any] = {"api_visibility": "private"}
    ui.split.change(lambda n, s: views.page_view(services, n, s, 1), [ui.chosen, ui.split], view, **private)
    ui.prev.click(lambda n, s, p: turn(n, s, p, -1), [ui.chosen, ui.split, ui.page_no], view, **private)
    ui.next.click(lambda n, s, p: turn(n, s, p, 1), [ui.chosen, ui.split, ui.page_no], view, **private)
    ui.page_no.submit(lambda n, s, p: turn(n, s, p, 0), [ui.chosen, ui.split, ui.page_no], view, **private)
    ui.measure.click(
        lambda n, m, c, s, progress=gr.Progress(): measure(services, n, m, c, s, progress),
        [ui.chosen, ui.model, ui.cutoff, ui.split], [ui.tokens_note, ui.tokens_plot], **private,
    )  # fmt: skip

    ui.delete.click(lambda n: gr.Button(visible=bool(n)), [ui.chosen], [ui.confirm], **private)

    def delete(name: str | None):
        try:
            out = actions.delete_dataset(services, name or "")
        except ValueError as e:
            return refuse(str(e), 5)
        inform(out["message"])
        names = [d.name for d in list_datasets(services.database)]
        value = names[0] if names else None
        return (
            out["message"],
            views.datasets_table(services),
            gr.Dropdown(choices=names, value=value),
            gr.Dropdown(choices=names),
            gr.Button(visible=False),
        )

    ui.confirm.click(delete, [ui.chosen], [ui.status, ui.table, ui.chosen, train_ui.dataset, ui.confirm], **private)
