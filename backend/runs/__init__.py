"""Runs: the queue, the supervisor that starts and watches each run's worker process, and the worker.

- queue.py       create (checked, then queued), cancel, resume, prioritize, delete
- query.py       reading runs: a page of the list, curves, the JSON shape, compare
- results.py     where a finished run's model is (base + adapter, or a full model folder)
- supervisor.py  starts queued runs as processes, watches them, reconciles after a restart
- kinds.py       other long work the supervisor advances each tick (searches; more kinds plug in here)
- slots.py, launch.py       which devices a run gets; the worker's argument list (never a shell)
- worker.py, callbacks.py   one run in its own process (`python -m backend.runs.worker RUN_ID`)
- external.py, ray_jobs.py, ray_train.py   runs on a cluster: Slurm's workers claim them; a Ray cluster's
                 Jobs API runs them (Ray Train's TorchTrainer, each worker running worker.py)
- preflight.py, failures.py, files.py   machine checks before queueing; why a run ended badly; run-folder files
"""

from backend.runs.query import RunQuery, compare, curve, list_page, summary
from backend.runs.queue import cancel_run, create_run, delete_run, get_run, list_runs, resume_run, set_priority
from backend.runs.supervisor import Supervisor, notify

__all__ = [
    "RunQuery",
    "Supervisor",
    "cancel_run",
    "compare",
    "create_run",
    "curve",
    "delete_run",
    "get_run",
    "list_page",
    "list_runs",
    "notify",
    "resume_run",
    "set_priority",
    "summary",
]
