"""One download in its own process (started by the supervisor through backend/models/downloads.py).

The hub client does the work (huggingface_hub's snapshot_download, or modelscope's); this process
watches the bytes land in the cache and writes progress, speed and ETA to the download's row twice a
second, and stops when the row is cancelled. Files arrive as `.incomplete` and are renamed when whole, so
a stopped download leaves nothing a run could load; the next pull keeps the whole files and fetches the
rest (huggingface_hub 2.x restarts a partly fetched file: its partial files are per process; a connection
dropped mid-file is resumed by the client with a Range request). A download that would leave less than
$TUNEBOARD_MIN_FREE_GB on the cache's disk is refused before it writes anything.

    python -m backend.models.fetch 3 --workspace workspace
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from sqlalchemy import update

from backend.models.downloads import end_waiting_runs, get_download
from backend.models.hub import HubRef, endpoint, explain, hub_cache, is_complete, modelscope_cache, token
from backend.workspace import Workspace, min_free_gb
from db import Database, Download
from db.models import utcnow

log = logging.getLogger(__name__)

TICK = 0.5  # seconds between progress writes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fetch one queued model download.")
    p.add_argument("download_id", type=int)
    p.add_argument("--workspace", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    database = Database.open(Workspace.resolve(args.workspace).database_url)
    d = get_download(database, args.download_id)
    ref = HubRef(d.repo_id, d.revision, d.hub)
    try:
        path = fetch(database, d.id, ref)
    except Exception as e:  # every failure ends the row with one line; the traceback goes to the log
        log.exception("download %s of %s failed", d.id, ref.name)
        _end(database, d.id, "failed", reason=explain(e, ref))
        end_waiting_runs(database, d.id, f"its model's download failed: {explain(e, ref)}")
        return 1
    _end(database, d.id, "completed", path=str(path))
    end_waiting_runs(database, d.id, None)
    log.info("download %s of %s completed: %s", d.id, ref.name, path)
    return 0


def fetch(database: Database, download_id: int, ref: HubRef) -> Path:
    """Download `ref` into its hub's cache, reporting progress on the row; the complete snapshot folder."""
    if ref.hub == "modelscope":
        total, folder, start = 0, modelscope_cache() / ref.repo_id, _modelscope(ref)
    else:
        total, folder, start = _hf_total(ref), _hf_repo_folder(ref), _hf(ref)
        _drop_stale_partials(folder)
        _check_room(ref, total - _size(folder))
    _write(database, download_id, bytes_total=total, bytes_done=min(_size(folder), total) if total else 0)
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["path"] = start()
        except BaseException as e:  # handed to the main thread
            result["error"] = e

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    last_bytes, last_time, speed = _size(folder), time.monotonic(), 0.0
    while thread.is_alive():
        thread.join(TICK)
        if get_download(database, download_id).status == "cancelled":
            log.info("download %s cancelled; its .incomplete files stay for a later pull", download_id)
            os._exit(0)  # the client's threads are mid-request: leave at once, the files are resumable
        done, now = _size(folder), time.monotonic()
        recent = (done - last_bytes) / max(now - last_time, 1e-6)
        speed = recent if speed == 0 else 0.7 * speed + 0.3 * recent  # smoothed: one slow tick is not the trend
        last_bytes, last_time = done, now
        done = min(done, total) if total else done
        eta = (total - done) / speed if total and speed > 0 else None
        _write(database, download_id, bytes_done=done, speed=max(speed, 0.0), eta_seconds=eta)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    path = Path(str(result["path"]))
    if not is_complete(path):
        raise ValueError(
            f"{ref.name} has no config.json and weights (safetensors) at its top level: not a model "
            "transformers can load"
        )
    _write(database, download_id, bytes_total=total or _size(folder), bytes_done=total or _size(folder))
    return path


def _hf_total(ref: HubRef) -> int:
    """The snapshot's size in bytes from the hub's file listing; this also refuses a wrong id, a missing
    revision or a gated model before anything is written."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=endpoint(), token=token())
    files = api.list_repo_tree(ref.repo_id, revision=ref.revision or None, recursive=True)
    return sum(f.size for f in files if isinstance(f, RepoFile))


def _check_room(ref: HubRef, missing: int) -> None:
    """Refuse, before a byte is written, a download that would leave less than min_free_gb() on the cache's disk."""
    cache = hub_cache()
    probe = next(p for p in (cache, *cache.parents) if p.exists())  # the cache folder may not exist yet
    free, keep = shutil.disk_usage(probe).free, min_free_gb() * 1e9
    if free - missing < keep:
        raise ValueError(
            f"{ref.name} needs {missing / 1e9:.2f} GB more and {cache} has {free / 1e9:.2f} GB free; downloads "
            f"keep at least {keep / 1e9:g} GB free: free some space, point HF_HUB_CACHE at a larger disk, or lower "
            "$TUNEBOARD_MIN_FREE_GB"
        )


def _hf_repo_folder(ref: HubRef) -> Path:
    return hub_cache() / f"models--{ref.repo_id.replace('/', '--')}" / "blobs"


def _hf(ref: HubRef):
    from huggingface_hub import snapshot_download

    return lambda: snapshot_download(
        ref.repo_id,
        revision=ref.revision or None,
        cache_dir=hub_cache(),
        endpoint=endpoint(),
        token=token(),
        max_workers=4,
    )


def _modelscope(ref: HubRef):
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise ValueError(
            "ModelScope downloads need the modelscope package: pip install modelscope (or use --hub hf)"
        ) from None
    target = modelscope_cache() / ref.repo_id
    return lambda: snapshot_download(ref.repo_id, revision=ref.revision or None, local_dir=str(target))


def _drop_stale_partials(blobs: Path) -> None:
    """Remove the partial files a killed download left (huggingface_hub 2.x writes each file to a
    process-unique `<etag>.<id>.incomplete` and cannot continue another process's). Whole files stay:
    the next pull fetches only what is missing. One download per model runs at a time (downloads.py)."""
    for partial in blobs.glob("*.incomplete") if blobs.is_dir() else []:
        log.info("removing %s, left by a download that stopped", partial.name)
        partial.unlink(missing_ok=True)


def _size(folder: Path) -> int:
    """Bytes in the download's folder, `.incomplete` files included (what a resume keeps)."""
    if not folder.is_dir():
        return 0
    total = 0
    for f in folder.rglob("*"):
        try:
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
        except OSError:
            continue  # renamed while we looked
    return total


def _write(database: Database, download_id: int, **values) -> None:
    with database.session() as s:
        s.execute(update(Download).where(Download.id == download_id, Download.status == "running").values(**values))


def _end(database: Database, download_id: int, status: str, **values) -> None:
    with database.session() as s:
        s.execute(
            update(Download)
            .where(Download.id == download_id, Download.status == "running")
            .values(status=status, finished_at=utcnow(), speed=0.0, eta_seconds=None, **values)
        )


if __name__ == "__main__":
    raise SystemExit(main())
