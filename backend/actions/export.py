"""Export and compression actions: a verified export of a completed run; a pruned (and recovered) variant."""

from __future__ import annotations

from typing import Any

from backend.actions.runs import show_run
from backend.actions.waiting import supervise_until
from backend.services import Services


def export(
    services: Services, run_id: int, fmt: str = "merged", out: str | None = None, push_to: str | None = None
) -> dict[str, Any]:
    """Write one export format of a completed run, verified against its model (backend.export.exporter)."""
    from backend.export.exporter import export_run

    return export_run(services.database, services.workspace, run_id, fmt, out=out, push_to=push_to)


def compress(services: Services, run_id: int, prune: str = "", wait: bool = False, timeout: float | None = None, **kw):
    """Prune a run into a measured new one (kw: compress_run's; `wait`: its recovery run); no `prune`: its variants."""
    from backend.compress import variant as v

    if not prune:
        return {"run_id": run_id, "variants": v.list_variants(services.database, services.workspace, run_id)}
    pruned, recovery = v.compress_run(services.database, services.workspace, run_id, prune, **kw)
    if recovery is not None and wait:
        supervise_until(services, recovery, timeout)
        v.record_recovery(services.database, services.workspace, recovery, kw.get("tolerance", 0.02))
    return show_run(services, recovery if recovery and wait else pruned) | {"recovery_run": recovery}
