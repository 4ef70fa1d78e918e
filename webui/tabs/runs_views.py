"""What the Runs tab shows, built from backend data: tables, curve frames, Markdown and HTML.

No Gradio here and no database: each function takes the JSON shapes of backend.runs.query and
returns a pandas frame or a string, so the tab's handlers stay one call each.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from backend.runs.query import EARLIER_SECONDS
from backend.tasks.selfcheck import learned
from webui.i18n import t
from webui.labels import metric_label, setting_label

LIVE_KEYS = {"eta_seconds", "sec_per_step", EARLIER_SECONDS}  # progress and bookkeeping figures, not results
HEADLINE = (  # the scores that judge a run, shown first: classifiers', then chat models', then training's
    "eval_accuracy", "eval_f1_macro", "eval_precision_macro", "eval_recall_macro",
    "eval_loss", "eval_perplexity", "eval_bleu4", "eval_rouge_l", "eval_rewards_accuracy", "reward",
    "final_loss", "train_loss",
)  # fmt: skip
# One series per plot: Gradio 6's line plot fixes its colour domain at the first data it draws, so a
# series that appears later (eval_loss after the first epoch) would be drawn without a colour.
LOSS_CURVE = "loss"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds >= 3600:
        return t("runs.dur_h", h=seconds // 3600, m=seconds % 3600 // 60)
    return t("runs.dur_m", m=seconds // 60, s=seconds % 60) if seconds >= 60 else t("runs.dur_s", s=seconds)


def when(iso: str | None) -> str:
    """An ISO time from the backend as a person reads it: '2026-11-28 16:25:59 UTC'."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def table_columns() -> list[str]:
    keys = ("id", "name", "status", "task", "model", "dataset", "method", "progress", "duration", "final_loss")
    return [t(f"runs.col_{k}") for k in keys]


def runs_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One page of runs; a queued run shows its place in the queue."""
    out = []
    for s in rows:
        status = t(f"runs.status_{s['status']}")
        if s.get("download_id"):
            status += f" ({t('runs.downloading')})"
        elif s.get("queue_position"):
            status += f" (#{s['queue_position']})"
        out.append(
            [
                s["id"],
                s["name"],
                status,
                s["task"],
                s["model"].rsplit("/", 1)[-1],
                s["dataset"] or "",
                s["method"],
                f"{s['step']}/{s['total_steps']}" if s["total_steps"] else "",
                duration(s["duration_seconds"]),
                s["final_loss"] if s["final_loss"] is not None else "",
            ]
        )
    return pd.DataFrame(out, columns=table_columns())


def page_label(total: int, page: int, size: int) -> str:
    pages = max(1, -(-total // size))
    return t("runs.page_of", page=page, pages=pages, total=f"{total:,}")


def curve_frame(curves: dict[str, dict[Any, list]], names: list[str], run_label: dict[Any, str] | None = None):
    """Long frame (step, value, series) for a LinePlot: one series per metric, or per run when comparing."""
    rows = []
    for name in names:
        for run_id, points in curves.get(name, {}).items():
            series = run_label[run_id] if run_label else name
            rows.extend((step, value, series) for step, value in points)
    frame = pd.DataFrame(rows, columns=["step", "value", "series"])
    # Typed columns even when empty: an untyped empty frame makes the plot treat numbers as labels.
    return frame.astype({"step": "int64", "value": "float64", "series": "str"})


def header(s: dict[str, Any]) -> str:
    """Run title, status, what it trains, and where it stands (queue place, step and ETA, or why it stopped)."""
    status = s["status"]
    download = s.get("download")
    if status == "queued" and download and download["status"] in ("queued", "running"):
        eta = t("runs.eta", eta=duration(download["eta_seconds"])) if download.get("eta_seconds") else ""
        where = t("runs.where_download", model=download["model"], percent=round(download["progress"] * 100), eta=eta)
    elif status == "queued":
        where = t("runs.where_queued", position=s.get("queue_position") or "?", priority=s["priority"])
    else:
        eta = t("runs.eta", eta=duration(s["eta_seconds"])) if s.get("eta_seconds") else ""
        where = t(
            "runs.where_step",
            step=s["step"],
            total=s["total_steps"] or "?",
            eta=eta,
            elapsed=duration(s["duration_seconds"]),
        )
    text = t(
        "runs.header",
        id=s["id"],
        name=s["name"],
        status=t(f"runs.status_{status}"),
        method=s["method"],
        model=s["model"],
        dataset=s["dataset"],
        where=where,
    )
    if s.get("parent_id"):
        text += " · " + t("runs.from_parent", parent=s["parent_id"])
    if s.get("study_id"):
        text += " · " + t("runs.from_search", trial=s["trial_number"], search=s["study_id"])
    if s.get("cancel_requested") and status == "running":
        text += "\n\n" + t("runs.cancelling")
    if status in ("failed", "interrupted", "cancelled") and s.get("reason"):
        text += "\n\n" + t("runs.why", reason=s["reason"].splitlines()[0])
    if status in ("failed", "interrupted", "cancelled"):
        text += "\n\n" + t("runs.resume_hint")
    if status == "completed":
        m = s.get("metrics") or {}
        if s.get("task", "sft") == "sft":
            text += "\n\n" + t("runs.completed_hint", loss=m.get("final_loss"), tps=m.get("tokens_per_second"))
            for e in m.get("evals") or []:  # an evaluation after training: base vs run on each suite
                key = "runs.eval_regression" if e["regression"] else "runs.eval_line"
                text += "\n\n" + t(key, suite=e["suite"], base=e["base"], run=e["run"], diff=e["difference"],
                                     lo=e["ci95"][0], hi=e["ci95"][1])  # fmt: skip
            if learned(m) is False:  # its answers to its own training prompts miss their targets
                matched = round(100 * m["train_check_matched"])
                text += "\n\n" + t("runs.not_learned", matched=matched, n=m["train_check_n"])
        else:  # a classifier: its scores, and Export for the model (the playground chats)
            text += "\n\n" + t("runs.completed_hint_classifier", accuracy=_fmt(m.get("eval_accuracy")))
    return text


def progress_bar(progress: float) -> str:
    pct = 100 * progress
    return f'<div class="tb-progress" title="{pct:.0f}%"><div style="width:{pct:.1f}%"></div></div>'


def final_metrics(metrics: dict[str, Any]) -> str:
    """Markdown tables of the run's results: the scores that judge it first and in bold, then the rest
    (timings, sizes, settings), then a classifier's per-class scores. Not the live ETA figures."""
    rows = {
        k: v
        for k, v in metrics.items()
        if k not in LIVE_KEYS and isinstance(v, int | float | str) and not isinstance(v, bool)
    }
    if not rows:
        return t("runs.no_metrics")
    first = [k for k in HEADLINE if k in rows]
    lines = [f"| {t('runs.metric')} | {t('runs.value')} |", "|---|---|"]
    lines += [f"| **{metric_label(k)}** | **{_fmt(rows[k])}** |" for k in first]
    lines += [f"| {metric_label(k)} | {_fmt(rows[k])} |" for k in sorted(rows) if k not in first]
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        columns = ("precision", "recall", "f1", "support")
        lines += ["", f"| {t('runs.class')} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [
            f"| {html.escape(str(name))} | " + " | ".join(_fmt(scores.get(c)) for c in columns) + " |"
            for name, scores in per_class.items()
            if isinstance(scores, dict)
        ]
    return "\n".join(lines + samples_table(metrics.get("samples")))


def samples_table(samples: Any) -> list[str]:
    """GRPO: the last sampled completions with each reward function's score (Markdown lines)."""
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], dict):
        return []
    rewards = [k for k in samples[0] if k not in ("prompt", "completion")]

    def cell(value: Any) -> str:
        return html.escape(str(value)).replace("|", "\\|").replace("\n", " ")[:200]

    lines = ["", f"**{t('runs.samples')}**", "", "| prompt | completion | " + " | ".join(rewards) + " |"]
    lines.append("|---" * (2 + len(rewards)) + "|")
    columns = ("prompt", "completion", *rewards)
    lines += ["| " + " | ".join(cell(row.get(k, "")) for k in columns) + " |" for row in samples]
    return lines


def confusion_matrix(metrics: dict[str, Any]) -> str:
    """metrics["confusion_matrix"] = {"labels": [...], "matrix": [[...]]} as a heatmap table (rows: true)."""
    cm = metrics.get("confusion_matrix")
    if not isinstance(cm, dict) or not cm.get("matrix"):
        return ""
    labels, matrix = [str(x) for x in cm.get("labels", [])], cm["matrix"]
    top = max((max(row) for row in matrix if row), default=0) or 1
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    body = []
    for label, row in zip(labels, matrix, strict=False):
        cells = "".join(
            f'<td style="background:rgba(37,99,235,{0.08 + 0.85 * v / top:.2f});'
            f'color:{"#fff" if v / top > 0.55 else "inherit"};text-align:center;padding:6px 10px">{v}</td>'
            for v in row
        )
        body.append(f'<tr><th style="text-align:right;padding-right:8px">{html.escape(label)}</th>{cells}</tr>')
    return (
        f"<div><b>{html.escape(t('runs.confusion'))}</b> <small>{html.escape(t('runs.confusion_axes'))}</small>"
        f'<table style="border-collapse:collapse;margin-top:6px"><tr><th></th>{head}</tr>{"".join(body)}</table></div>'
    )


def hardware(s: dict[str, Any]) -> str:
    """Where and how fast the run trained, and when."""
    m = s.get("metrics") or {}
    items = [
        (t("runs.hw_devices"), s.get("devices") or m.get("device")),
        (t("runs.hw_executor"), s.get("executor")),
        (t("runs.hw_cluster_job"), s.get("cluster_job_id")),
        (t("runs.hw_workers"), s.get("workers") if (s.get("workers") or 1) > 1 else None),
        (t("runs.hw_precision"), m.get("precision")),
        (t("runs.hw_processes"), m.get("world_size")),
        (t("runs.hw_pid"), s.get("pid")),
        (t("runs.hw_params"), _params(m)),
        (t("runs.hw_tokens_per_second"), m.get("tokens_per_second")),
        (t("runs.hw_sec_per_step"), m.get("sec_per_step")),
        (t("runs.hw_created"), when(s.get("created_at"))),
        (t("runs.hw_started"), when(s.get("started_at"))),
        (t("runs.hw_finished"), when(s.get("finished_at"))),
        (t("runs.hw_waited"), duration(s.get("wait_seconds"))),
        (t("runs.hw_duration"), duration(s.get("duration_seconds"))),
        (t("runs.hw_train_seconds"), duration(m.get("train_seconds"))),
        (t("runs.hw_startup"), _seconds(m.get("startup_seconds"))),
        (t("runs.hw_after"), _after(m)),
        (t("runs.hw_heartbeat"), when(s.get("heartbeat_at"))),
    ]
    items += tracker_items(s.get("trackers") or {})
    return "\n".join(f"- **{k}**: {_fmt(v)}" for k, v in items if v not in (None, ""))


def _seconds(value: float | None) -> str:
    return "" if value is None else t("runs.seconds", s=f"{value:.1f}")


def _after(m: dict[str, Any]) -> str:
    """After the last step: the model saved, then the checks (validation, answers to training prompts)."""
    if m.get("save_seconds") is None:
        return ""
    return t("runs.hw_after_value", saved=f"{m['save_seconds']:.1f}", checks=f"{m.get('checks_seconds') or 0:.1f}")


def tracker_items(where: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Where the run is in each tracker it reported to, as the command or address that opens it."""
    items = []
    if "tensorboard" in where:
        items.append(("TensorBoard", f"`tensorboard --logdir {where['tensorboard']['log_dir']}`"))
    if "mlflow" in where:
        m = where["mlflow"]
        run = t("runs.tracker_mlflow_run", run_id=m.get("run_id", "?"), experiment=m.get("experiment", ""))
        items.append(("MLflow", f"{run} (`mlflow ui --backend-store-uri {m['tracking_uri']}`)"))
    if "wandb" in where:
        w = where["wandb"]
        items.append(("W&B", w.get("url") or f"`wandb sync {w.get('dir', '')}` ({w.get('mode', '')})"))
    if "trackio" in where:
        tracked = where["trackio"]
        prefix = f"TRACKIO_DIR={tracked['dir']} " if tracked.get("dir") else ""
        items.append(("Trackio", f"`{prefix}trackio show --project {tracked['project']}`"))
    return items


def artifacts_frame(s: dict[str, Any]) -> pd.DataFrame:
    cols = [t("runs.art_kind"), t("runs.art_path"), t("runs.art_size"), t("runs.art_check")]
    rows = [
        [
            a["kind"],
            a["path"],
            _mb(a["size_bytes"]),
            json.dumps(a["verification"], ensure_ascii=False) if a.get("verification") else "",
        ]
        for a in s.get("artifacts", [])
    ]
    rows += [[f"checkpoint {c['step']}", c["path"], _mb(c["size_bytes"]), ""] for c in s.get("checkpoints", [])]
    return pd.DataFrame(rows, columns=cols)


def config_diff_html(compared: dict[str, Any]) -> str:
    """The compared runs' settings: the differing ones highlighted, the shared ones folded away below."""
    runs = compared["runs"]
    head = "<tr><th>" + html.escape(t("runs.setting")) + "</th>"
    head += "".join(f"<th>#{r['id']} {html.escape(r['name'])}</th>" for r in runs) + "</tr>"
    differ = []
    for key, values in compared["config_diff"].items():
        cells = "".join(f"<td><b>{html.escape(_fmt(v))}</b></td>" for v in values)
        differ.append(f'<tr style="background:rgba(250,204,21,.28)"><td><b>{setting_label(key)}</b></td>{cells}</tr>')
    shared = [
        f"<tr><td>{setting_label(key)}</td><td>{html.escape(_fmt(value))}</td></tr>"
        for key, value in compared["config_same"].items()
    ]
    table = '<table class="tb-diff" style="width:100%;border-collapse:collapse">'
    note = t("runs.diff_note", n=len(compared["config_diff"]))
    folded = t("runs.shared_settings", n=len(shared))
    return (
        f"<p><b>{html.escape(note)}</b></p>{table}{head}{''.join(differ)}</table>"
        f"<details style='margin-top:8px'><summary>{html.escape(folded)}</summary>"
        f"{table}{''.join(shared)}</table></details>"
    )


def metrics_side_by_side(compared: dict[str, Any]) -> pd.DataFrame:
    runs = compared["runs"]
    cols = [t("runs.metric")] + [f"#{r['id']} {r['name']}" for r in runs]
    order = sorted(compared["metrics"], key=lambda k: (HEADLINE.index(k) if k in HEADLINE else len(HEADLINE), k))
    rows = [
        [metric_label(k, html_key=False), *(_fmt(v) for v in compared["metrics"][k])]
        for k in order
        if k not in LIVE_KEYS
    ]
    rows.insert(0, [t("runs.col_status"), *(t(f"runs.status_{r['status']}") for r in runs)])
    return pd.DataFrame(rows, columns=cols)


def _params(m: dict[str, Any]) -> str | None:
    if not m.get("total_params"):
        return None
    share = 100 * m.get("trainable_params", 0) / m["total_params"]
    return f"{m.get('trainable_params', 0):,} / {m['total_params']:,} ({share:.2f}%)"


def _mb(size: int | None) -> str:
    return f"{(size or 0) / 1e6:.1f} MB"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"  # 139,399,488 parameters
    if value is None:
        return "—"
    return str(value)
