"""An idle supervisor sleeps without querying the database, and work queued by another process wakes it."""

import subprocess
import sys
import time

from sqlalchemy import event

from backend.runs.queue import get_run
from backend.runs.supervisor import ROOT, Supervisor
from db import Run, RunStatus


def test_idle_supervisor_queries_nothing_until_another_process_wakes_it(services):
    statements: list[str] = []
    event.listen(services.database.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    sup = Supervisor(services.database, services.workspace, tick=0.2, idle_tick=120)
    sup.start()
    try:
        time.sleep(1.0)  # the first tick found nothing live
        statements.clear()
        with services.database.session() as s:  # queued behind the supervisor's back: no notify in this process
            run = Run(name="r", task="sft", model="m", method="lora", config={}, metrics={}, status=RunStatus.queued)
            run.devices = "cuda:7"  # a device this machine lacks: refused at once, no worker starts
            s.add(run)
        statements.clear()
        time.sleep(1.5)
        assert statements == []  # idle: seven ticks passed without a query
        assert get_run(services.database, run.id).status == RunStatus.queued
        # Another process (the CLI) queues work and wakes it through the workspace.
        code = "import sys; from backend.runs.supervisor import notify; from backend.workspace import Workspace; "
        code += "notify(Workspace.resolve(sys.argv[1]))"
        subprocess.run([sys.executable, "-c", code, str(services.workspace.root)], cwd=ROOT, check=True, timeout=60)
        deadline = time.monotonic() + 5
        while get_run(services.database, run.id).status == RunStatus.queued and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = get_run(services.database, run.id)
        assert refused.status == RunStatus.failed and refused.reason.startswith("not started")
    finally:
        sup.stop()
