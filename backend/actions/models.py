"""Model actions: pull from a hub (a download job), list what is on disk, remove, downloads, cancel, will it fit."""

from __future__ import annotations

from typing import Any

from backend.actions.runs import with_dataset_task
from backend.actions.waiting import supervise_while
from backend.config import RunConfig
from backend.services import Services


def models_pull(
    services: Services,
    model: str,
    revision: str = "",
    hub: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Download a hub model (in the background, like a run); with `wait`, return when it ends. A failed
    download is a ValueError with its reason (one line)."""
    from backend.models.downloads import LIVE, get_download
    from backend.models.library import pull, pulled

    out = pull(services.database, model, revision, hub)
    if not wait or out["download_id"] is None:
        return out
    download_id = out["download_id"]
    busy = lambda: get_download(services.database, download_id).status in LIVE  # noqa: E731
    supervise_while(services, busy, timeout, f"download {download_id}")
    out = pulled(services.database, download_id)
    if out["status"] != "completed":
        raise ValueError(f"download {download_id} {out['status']}: {out['reason']}")
    return out


def models_list(services: Services) -> list[dict[str, Any]]:
    """Models on disk: the bundled ones and the hub caches' (with size)."""
    from backend.models.library import on_disk

    return on_disk(services.workspace.models_dir)


def models_rm(services: Services, model: str, hub: str | None = None) -> dict[str, Any]:
    """Delete a downloaded model (refused while it downloads or a queued/running run uses it)."""
    from backend.models.library import remove

    return remove(services.database, model, hub)


def models_downloads(services: Services) -> list[dict[str, Any]]:
    """Downloads, newest first, with bytes, speed and ETA."""
    from backend.models.downloads import list_downloads, summary

    return [summary(d) for d in list_downloads(services.database)]


def models_cancel(services: Services, download_id: int) -> dict[str, Any]:
    """Cancel a queued or running download (a later pull resumes what it fetched)."""
    from backend.models.downloads import cancel_download, summary

    return summary(cancel_download(services.database, download_id))


def models_fit(services: Services, settings: dict[str, Any]) -> dict[str, Any]:
    """Will a run with these settings fit? Estimated peak memory next to what the device has, and advice."""
    from backend.models.catalog import resolve_model
    from backend.models.fit import estimate_run, padded_to

    settings = with_dataset_task(services, settings)
    cfg = RunConfig.from_dict({k: v for k, v in settings.items() if v is not None})
    if settings.get("dataset"):  # as train's check: sequences no longer than the dataset's longest row
        from backend.data import find_dataset

        cfg = padded_to(cfg, (find_dataset(services.database, settings["dataset"]).stats or {}).get("max_chars"))
    folder = resolve_model(cfg.model, services.workspace.models_dir, cfg.trust_remote_code)
    return {
        "model": cfg.model,
        "task": cfg.task,
        "method": cfg.method,
        **estimate_run(cfg, folder, cache_dir=services.workspace.models_dir / ".summaries"),
    }
