"""Downloads as jobs: a `downloads` row per model fetched from a hub, advanced by the supervisor.

The supervisor calls `advance_downloads` on every tick while a download is live (backend/runs/kinds.py
names it; the supervisor never imports this package): a queued download gets its own process
(backend/models/fetch.py, which writes bytes, speed and ETA to the row), and a process that died (kill -9,
a reboot) ends its row failed. Pulling again resumes: huggingface_hub continues its `.incomplete` files.
A run whose model is still downloading waits in the queue (`Run.download_id`) and starts when it lands.

    d = queue_download(database, parse_hub_id("Qwen/Qwen2.5-0.5B-Instruct"))
    cancel_download(database, d.id)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

from sqlalchemy import select, update

from backend.models.hub import HubRef
from backend.processes import spawn_job
from backend.workspace import Workspace
from db import Database, Download, Run, RunStatus
from db.models import utcnow

log = logging.getLogger(__name__)

LIVE = ("queued", "running")


def queue_download(database: Database, ref: HubRef) -> Download:
    """A queued download of `ref`, or the live one already fetching it (one download per model at a time)."""
    with database.session() as s:
        live = s.scalars(
            select(Download).where(
                Download.repo_id == ref.repo_id,
                Download.revision == ref.revision,
                Download.hub == ref.hub,
                Download.status.in_(LIVE),
            )
        ).first()
        if live is not None:
            return live
        download = Download(repo_id=ref.repo_id, revision=ref.revision, hub=ref.hub, status="queued")
        s.add(download)
    return download  # the supervisor starts it on its next tick (a second)


def get_download(database: Database, download_id: int) -> Download:
    with database.session() as s:
        download = s.get(Download, int(download_id))
        if download is None:
            raise ValueError(f"download {download_id} not found; `models downloads` lists them")
        return download


def list_downloads(database: Database, limit: int = 50) -> list[Download]:
    with database.session() as s:
        return list(s.scalars(select(Download).order_by(Download.id.desc()).limit(limit)))


def live_download(database: Database, repo_id: str) -> Download | None:
    with database.session() as s:
        return s.scalars(select(Download).where(Download.repo_id == repo_id, Download.status.in_(LIVE))).first()


def cancel_download(database: Database, download_id: int) -> Download:
    """Stop a queued or running download; what it fetched stays in the cache's `.incomplete` files, so a
    later pull continues from there. Runs waiting on it end cancelled."""
    download = get_download(database, download_id)
    with database.session() as s:
        changed = s.execute(
            update(Download)
            .where(Download.id == download.id, Download.status.in_(LIVE))
            .values(status="cancelled", finished_at=utcnow(), reason="cancelled", speed=0.0, eta_seconds=None)
        ).rowcount
    if not changed:
        raise ValueError(f"download {download.id} is {download.status}; only a queued or running one can be cancelled")
    if download.pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(download.pid, signal.SIGTERM)
    end_waiting_runs(database, download.id, f"its model's download ({download.repo_id}) was cancelled")
    return get_download(database, download.id)


def end_waiting_runs(database: Database, download_id: int, why: str | None) -> None:
    """Runs queued behind this download: released to start (`why` None) or ended failed with `why`."""
    waiting = (Run.download_id == download_id, Run.status == RunStatus.queued)
    with database.session() as s:
        if why is None:
            s.execute(update(Run).where(*waiting).values(download_id=None))
        else:
            s.execute(
                update(Run)
                .where(*waiting)
                .values(status=RunStatus.failed, finished_at=utcnow(), reason=f"not started: {why}")
            )


def release_if_done(database: Database, download_id: int) -> None:
    """Runs queued behind a download that has already ended: started (completed) or ended (failed)."""
    d = get_download(database, download_id)
    if d.status == "completed":
        end_waiting_runs(database, d.id, None)
    elif d.status not in LIVE:
        end_waiting_runs(database, d.id, f"its model's download {d.status}: {d.reason}")


def summary(d: Download) -> dict[str, Any]:
    """A download as the CLI, the API and the Models tab show it."""
    return {
        "id": d.id,
        "model": f"{d.repo_id}@{d.revision}" if d.revision else d.repo_id,
        "repo_id": d.repo_id,
        "revision": d.revision or "main",
        "hub": d.hub,
        "status": d.status,
        "bytes_done": d.bytes_done,
        "bytes_total": d.bytes_total,
        "progress": round(d.bytes_done / d.bytes_total, 4) if d.bytes_total else 0.0,
        "speed_mb_s": round(d.speed / 2**20, 2),
        "eta_seconds": round(d.eta_seconds) if d.eta_seconds is not None else None,
        "path": d.path,
        "reason": d.reason,
        "created_at": d.created_at,
    }


def advance_downloads(database: Database, workspace: Workspace) -> None:
    """The supervisor's step: end downloads whose process is gone, start the queued ones."""
    from backend.processes import is_alive, process_start_time

    with database.session() as s:
        live = list(s.scalars(select(Download).where(Download.status.in_(LIVE)).order_by(Download.id)))
    for d in live:
        if d.status == "running" and not is_alive(d.pid, d.pid_started_at):
            why = "the download process ended before finishing (killed?); pull again to resume where it stopped"
            _fail(database, d.id, why)
        elif d.status == "queued":
            _start(database, workspace, d.id, process_start_time)


def _fail(database: Database, download_id: int, why: str) -> None:
    with database.session() as s:
        changed = s.execute(
            update(Download)
            .where(Download.id == download_id, Download.status.in_(LIVE))
            .values(status="failed", finished_at=utcnow(), reason=why, speed=0.0, eta_seconds=None)
        ).rowcount
    if changed:
        log.warning("download %s failed: %s", download_id, why)
        end_waiting_runs(database, download_id, f"its model's download failed: {why}")


def _start(database: Database, workspace: Workspace, download_id: int, start_time) -> None:
    with database.session() as s:
        claimed = s.execute(
            update(Download)
            .where(Download.id == download_id, Download.status == "queued")
            .values(status="running", started_at=utcnow())
        ).rowcount
    if not claimed:
        return
    try:
        proc = spawn_job("backend.models.fetch", download_id, workspace.root, "downloads")
    except OSError as e:
        _fail(database, download_id, f"the download process could not be started: {e}")
        return
    with database.session() as s:
        s.execute(
            update(Download).where(Download.id == download_id).values(pid=proc.pid, pid_started_at=start_time(proc.pid))
        )
    log.info("download %s started as pid %s", download_id, proc.pid)
