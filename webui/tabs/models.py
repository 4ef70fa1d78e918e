"""Models tab: a catalog per task (on disk or not), pull any hub id, follow downloads, delete models on disk.

Downloads are jobs in the database (backend/models/downloads.py): the list survives a page reload and
moves on while the page is closed; a timer redraws it every two seconds while the tab is open.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from backend import actions
from backend.models.hub import HUBS, hub_choice, recent_offline_reason
from backend.models.library import catalog
from backend.services import Services
from webui.choices import TASKS
from webui.feedback import inform, refuse
from webui.i18n import L, t


@dataclass
class ModelsUI:
    task: gr.Dropdown
    offline: gr.Markdown
    catalog: gr.Dataframe
    hub: gr.Radio
    model_id: gr.Textbox
    revision: gr.Textbox
    pull: gr.Button
    downloads: gr.HTML
    cancel_id: gr.Number
    cancel: gr.Button
    on_disk: gr.Dataframe
    chosen: gr.Dropdown
    delete: gr.Button
    timer: gr.Timer


def build(services: Services) -> ModelsUI:
    task = gr.Dropdown(TASKS, value="sft", label=L("train.task"))
    offline = gr.Markdown()
    table = gr.Dataframe(
        label=L("models.catalog"),
        interactive=False,
        wrap=True,
        column_widths=["25%", "9%", "11%", "7%", "8%", "7%", "8%", "25%"],  # short headers stay on one line
    )
    with gr.Row():
        hub = gr.Radio(
            [(L(f"models.hub_{h}"), h) for h in HUBS],
            value=_default_hub(),
            label=L("models.hub"),
            scale=0,
            min_width=300,
        )
        model_id = gr.Textbox(label=L("models.id"), info=L("models.id_info"), placeholder="Qwen/Qwen2.5-0.5B-Instruct")
        revision = gr.Textbox(label=L("models.revision"), placeholder="main", scale=0)
        pull = gr.Button(L("models.pull"), variant="primary", elem_classes="tb-inline-button", scale=0)
    downloads = gr.HTML(label=L("models.downloads"))
    with gr.Row():
        cancel_id = gr.Number(label=L("models.download_id"), precision=0, scale=0)
        cancel = gr.Button(L("models.cancel"), elem_classes="tb-inline-button", scale=0, min_width=200)
    on_disk = gr.Dataframe(label=L("models.on_disk"), interactive=False, wrap=True)
    with gr.Row():
        chosen = gr.Dropdown([], label=L("models.chosen"))
        delete = gr.Button(L("models.delete"), variant="stop", elem_classes="tb-inline-button", scale=0, min_width=200)
    timer = gr.Timer(2.0, active=False)
    return ModelsUI(
        task,
        offline,
        table,
        hub,
        model_id,
        revision,
        pull,
        downloads,
        cancel_id,
        cancel,
        on_disk,
        chosen,
        delete,
        timer,
    )


def _default_hub() -> str:
    """$TUNEBOARD_HUB when it names a hub (a wrong value is refused when a pull uses it), else hf."""
    try:
        return hub_choice(None)
    except ValueError:
        return "hf"


def catalog_table(services: Services, task: str) -> pd.DataFrame:
    yes, no = t("models.mark_yes"), "–"
    rows = [
        {
            t("models.col_id"): m["id"],
            t("models.col_params"): m["params"],
            t("models.col_licence"): m["licence"],
            t("models.col_gated"): yes if m["gated"] else no,
            t("models.col_context"): m["context"] or "",
            t("models.col_on_disk"): yes if m["on_disk"] else no,
            t("models.col_usable"): yes if m["usable"] else no,
            t("models.col_note"): m["note"],
        }
        for m in catalog(task, services.workspace.models_dir)
    ]
    return pd.DataFrame(rows)


def downloads_html(services: Services) -> str:
    """Each download with a progress bar, bytes, speed and ETA (or its reason, once it ended)."""
    rows = actions.models_downloads(services)
    if not rows:
        return f"<p>{html.escape(t('models.no_downloads'))}</p>"
    lines = []
    for d in rows[:20]:
        mb = f"{d['bytes_done'] / 2**20:.1f} / {d['bytes_total'] / 2**20:.1f} MB" if d["bytes_total"] else ""
        live = d["status"] in ("queued", "running")
        extra = (
            t("models.speed", speed=d["speed_mb_s"], eta=d["eta_seconds"] if d["eta_seconds"] is not None else "?")
            if live
            else (d["reason"] or "")
        )
        lines.append(
            f"<div><b>#{d['id']} {html.escape(d['model'])}</b> · {html.escape(t('models.status_' + d['status']))} "
            f"· {mb} · {html.escape(extra)}<div class='tb-progress'><div style='width:{d['progress'] * 100:.1f}%'>"
            "</div></div></div>"
        )
    return "".join(lines)


def disk_table(services: Services) -> tuple[pd.DataFrame, list[str]]:
    rows = actions.models_list(services)
    table = pd.DataFrame(
        [
            {t("models.col_id"): m["id"], t("models.col_hub"): m["hub"], t("models.col_size"): m["size_mb"] or ""}
            for m in rows
        ]
    )
    return table, [m["id"] for m in rows if m["hub"] != "bundled"]


def wire(services: Services, ui: ModelsUI, tab: gr.Tab, app: gr.Blocks) -> None:
    private = {"api_visibility": "private"}

    def refresh(task: str, hub: str = "hf") -> list[Any]:
        table, deletable = disk_table(services)
        why = recent_offline_reason(hub)
        banner = t("models.offline", why=why) if why else ""
        return [
            banner,
            catalog_table(services, task),
            downloads_html(services),
            table,
            gr.Dropdown(choices=deletable),
            gr.Timer(active=True),
        ]

    outputs = [ui.offline, ui.catalog, ui.downloads, ui.on_disk, ui.chosen, ui.timer]
    tab.select(refresh, [ui.task, ui.hub], outputs, show_progress="hidden", **private)
    app.load(refresh, [ui.task, ui.hub], outputs, show_progress="hidden", **private)
    ui.hub.change(refresh, [ui.task, ui.hub], outputs, show_progress="hidden", **private)
    ui.task.change(lambda task: catalog_table(services, task), ui.task, ui.catalog, **private)

    def pick(e: gr.SelectData) -> str:
        return e.row_value[0] if e.row_value else gr.skip()

    ui.catalog.select(pick, None, ui.model_id, **private)

    def tick() -> str:
        return downloads_html(services)

    ui.timer.tick(tick, None, ui.downloads, show_progress="hidden", **private)

    def pull(model: str, revision: str, hub: str):
        try:
            out = actions.models_pull(services, (model or "").strip(), (revision or "").strip(), hub=hub)
        except ValueError as e:
            return refuse(str(e), 1)
        inform(
            t("models.on_disk_already", model=out["id"])
            if out["download_id"] is None
            else t("models.queued", model=out["id"])
        )
        return downloads_html(services)

    ui.pull.click(pull, [ui.model_id, ui.revision, ui.hub], ui.downloads, **private)

    def cancel(download_id: float | None):
        if not download_id:
            return refuse(t("models.pick_download"), 1)
        try:
            actions.models_cancel(services, int(download_id))
        except ValueError as e:
            return refuse(str(e), 1)
        return downloads_html(services)

    ui.cancel.click(cancel, ui.cancel_id, ui.downloads, **private)

    def delete(model: str | None, task: str, hub: str):
        if not model:
            return refuse(t("models.pick_model"), len(outputs))
        try:
            out = actions.models_rm(services, model)
        except ValueError as e:
            return refuse(str(e), len(outputs))
        inform(t("models.deleted", model=out["id"], mb=out["freed_mb"]))
        return refresh(task, hub)

    ui.delete.click(delete, [ui.chosen, ui.task, ui.hub], outputs, **private)
