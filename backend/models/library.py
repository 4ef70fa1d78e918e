"""The models on this machine as JSON-shaped results (the CLI's `models` commands, the API, the Models tab).

pull(database, "Qwen/Qwen2.5-0.5B-Instruct")   # on disk already, or a queued download
on_disk(models_dir)                             # bundled and hub models with their size
remove(database, "Qwen/Qwen2.5-0.5B-Instruct")  # refused while a download or a run uses it
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from backend.models.catalog import BUNDLED, is_materialized, models_for
from backend.models.downloads import get_download, live_download, queue_download, summary
from backend.models.hub import (
    HubRef,
    NotOnDisk,
    cached_models,
    delete_cached,
    local_snapshot,
    parse_hub_id,
    refuse_offline,
)
from db import Database, Run, RunStatus


def hub_ref(model: str, hub: str | None = None, revision: str = "") -> HubRef:
    """`model` as a hub id, or a ValueError that says what a hub id looks like."""
    ref = parse_hub_id(model, hub, revision)
    if ref is None:
        raise ValueError(f"'{model}' is not a hub id: give org/name (e.g. Qwen/Qwen2.5-0.5B-Instruct), optionally @rev")
    return ref


def pull(database: Database, model: str, revision: str = "", hub: str | None = None) -> dict[str, Any]:
    """The model on disk (status completed) or its download, queued (or the live one already fetching it).
    Refused in one line when it is not on disk and the hub cannot be reached."""
    ref = hub_ref(model, hub, revision)
    folder = local_snapshot(ref)
    if folder is not None:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        return {**_shape(ref, str(folder), size, "completed"), "download_id": None}
    refuse_offline(NotOnDisk(ref, ""))
    return pulled(database, queue_download(database, ref).id)


def pulled(database: Database, download_id: int) -> dict[str, Any]:
    """A download in the shape `models pull` prints: id, revision, path, size_mb, status (+ progress)."""
    d = get_download(database, download_id)
    ref = HubRef(d.repo_id, d.revision, d.hub)
    return {**_shape(ref, d.path, d.bytes_total, d.status), **summary(d), "id": d.repo_id, "download_id": d.id}


def _shape(ref: HubRef, path: str | None, size: int, status: str) -> dict[str, Any]:
    return {
        "id": ref.repo_id,
        "revision": ref.revision or "main",
        "hub": ref.hub,
        "path": path,
        "size_mb": round(size / 2**20, 1),
        "status": status,
    }


def on_disk(models_dir: Path) -> list[dict[str, Any]]:
    """Every model a run can use without a download: bundled ones (installed) and the hub caches' models."""
    bundled = [
        {
            "id": m.name,
            "hub": "bundled",
            "task": m.task,
            "path": None,
            "size_mb": None,
            "ready": is_materialized(m.name, models_dir),
            "note": m.note,
        }
        for m in BUNDLED.values()
        if m.name in models_for(m.task)
    ]
    return bundled + [{**m, "ready": True} for m in cached_models()]


def remove(database: Database, model: str, hub: str | None = None) -> dict[str, Any]:
    """Delete a hub model from the cache; refused while it downloads or a queued/running run uses it."""
    ref = hub_ref(model, hub)
    live = live_download(database, ref.repo_id)
    if live is not None:
        raise ValueError(f"model {ref.repo_id} is downloading (download {live.id}): cancel it first")
    with database.session() as s:
        users = list(
            s.scalars(
                select(Run.id).where(
                    Run.status.in_((RunStatus.queued, RunStatus.running)),
                    or_(Run.model == ref.repo_id, Run.model.startswith(f"{ref.repo_id}@", autoescape=True)),
                )
            )
        )
    if users:
        raise ValueError(f"model {ref.repo_id} is used by queued or running run(s) {', '.join(map(str, users))}")
    return delete_cached(ref)


def catalog(task: str, models_dir: Path) -> list[dict[str, Any]]:
    """The Models tab's list for `task`: bundled models, then the curated hub models, each saying whether it
    is on disk and whether a run can use it now (on disk, or the hub is reachable)."""
    from backend.models.hub import recent_offline_reason
    from backend.models.popular import popular

    online = recent_offline_reason() is None  # probed at most once a minute
    cached = {m["id"] for m in cached_models()}
    rows = [
        {"id": m.name, "task": m.task, "params": m.params, "licence": m.licence, "gated": False, "context": None}
        | {"note": m.note}
        | {"on_disk": is_materialized(m.name, models_dir) or bool(m.folder), "usable": True}
        for m in BUNDLED.values()
        if m.task == task and m.name in models_for(task)
    ]
    rows += [p | {"on_disk": p["id"] in cached, "usable": online or p["id"] in cached} for p in popular(task)]
    return rows
