"""How the Datasets tab shows a dataset: the list, its summary, splits, one page of rows (chat turns,
a table, or image thumbnails) and its label distribution."""

from __future__ import annotations

import html
import io
from typing import Any

import gradio as gr
import pandas as pd

from backend.data import find_dataset, list_datasets, page
from backend.data.stats import label_distribution
from backend.services import Services
from webui.i18n import t

PAGE_ROWS = 10


def datasets_table(services: Services) -> pd.DataFrame:
    rows = [
        (d.id, d.name, d.version, d.task, d.format, d.num_rows, " / ".join(f"{k} {v}" for k, v in d.splits.items()))
        for d in list_datasets(services.database)
    ]
    columns = ("id", "name", "version", "task", "format", "rows", "splits")
    return pd.DataFrame(rows, columns=[t(f"datasets.col_{c}") for c in columns])


def info_markdown(ds) -> str:
    s = ds.stats or {}
    parts = [t("datasets.info", name=ds.name, rows=f"{ds.num_rows:,}", version=ds.version, fmt=ds.format, task=ds.task)]
    parts.append(t("datasets.info_hash", sha=ds.sha256[:16], source=ds.source_file))
    if s.get("duplicate_rows"):
        key = "datasets.info_dropped" if s.get("dropped_duplicates") else "datasets.info_duplicates"
        parts.append(t(key, n=s["duplicate_rows"]))
    if s.get("duplicate_of"):
        parts.append(t("datasets.info_same", name=s["duplicate_of"]["name"]))
    if s.get("invalid_rows"):
        parts.append(t("datasets.info_invalid", n=f"{s['invalid_rows']:,}"))
        parts += [f"- `{problem}`" for problem in s.get("invalid_examples", [])[:5]]
    if s.get("labels"):
        parts.append(t("datasets.info_labels", n=len(s["labels"]), labels=", ".join(s["labels"][:20])))
    return "  \n".join(parts)


def splits_table(ds) -> pd.DataFrame:
    counts = (ds.stats or {}).get("label_counts", {})
    rows = [(k, v, round(100 * v / ds.num_rows, 1), len(counts.get(k, {})) or "") for k, v in ds.splits.items()]
    return pd.DataFrame(rows, columns=[t(f"datasets.col_{c}") for c in ("split", "rows", "share", "classes")])


def chat_html(rows: list[dict[str, Any]], offset: int) -> str:
    """Conversations as chat turns (escaped: dataset text is never trusted as HTML)."""
    colors = {"system": "#8884", "user": "#3b82f622", "assistant": "#10b98122", "tool": "#f59e0b22"}
    cards = []
    for i, row in enumerate(rows, start=offset + 1):
        if "messages" in row:
            turns = "".join(
                f'<div style="background:{colors[m["role"]]};border-radius:8px;padding:6px 10px;margin:4px 0;'
                f'white-space:pre-wrap"><b>{html.escape(t("datasets.role_" + m["role"]))}</b><br>'
                f"{html.escape(m['content'][:4000])}</div>"
                for m in row["messages"]
            )
        else:
            turns = f'<div style="white-space:pre-wrap">{html.escape(row.get("text", "")[:4000])}</div>'
        cards.append(
            f'<div style="border:1px solid #8884;border-radius:10px;padding:8px;margin:8px 0">#{i}{turns}</div>'
        )
    return f'<div style="max-height:560px;overflow-y:auto">{"".join(cards)}</div>'


def thumbnails(rows: list[dict[str, Any]]) -> list[tuple[Any, str]]:
    from PIL import Image

    out = []
    for r in rows:
        im = Image.open(io.BytesIO(r["image"]))
        im.thumbnail((160, 160))
        out.append((im.convert("RGB"), f"{r['label']} · {r['file']}"))
    return out


def page_view(services: Services, name: str | None, split: str, number: float | None):
    """(chat html, table, gallery, page number) for one page of one split."""
    hidden = gr.update(visible=False)
    if not name:
        return "", hidden, hidden, 1
    ds = find_dataset(services.database, name)
    split = split if split in ds.splits else "train"
    last = max(1, -(-ds.splits.get(split, 0) // PAGE_ROWS))
    number = min(max(1, int(number or 1)), last)
    offset = (number - 1) * PAGE_ROWS
    rows = page(services.workspace, ds.id, split, offset, PAGE_ROWS)
    if ds.task == "image-classification":
        return "", hidden, gr.update(value=thumbnails(rows), visible=True), number
    if ds.task == "sft":
        return chat_html(rows, offset), hidden, hidden, number
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "image"} for r in rows])
    return "", gr.update(value=table, visible=True), hidden, number


def labels_frame(ds) -> pd.DataFrame:
    return pd.DataFrame(label_distribution(ds.stats or {}), columns=["label", "split", "rows"])


def show(services: Services, name: str | None):
    """Everything about one dataset except token lengths (measured on request)."""
    empty = pd.DataFrame(columns=["label", "split", "rows"])
    if not name:
        return (
            "",
            pd.DataFrame(),
            gr.Dropdown(choices=["train"], value="train"),
            *page_view(services, None, "", 1),
            empty,
        )
    ds = find_dataset(services.database, name)
    return (
        info_markdown(ds),
        splits_table(ds),
        gr.Dropdown(choices=list(ds.splits), value="train"),
        *page_view(services, name, "train", 1),
        gr.BarPlot(
            value=labels_frame(ds),
            visible=ds.task != "sft",
            x_title=t("datasets.axis_label"),  # axis titles are not translated by Gradio: set in the page's language
            y_title=t("datasets.col_rows"),
            color_title=t("datasets.col_split"),
        ),
    )
