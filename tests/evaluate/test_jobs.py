"""An evaluation is a job: its own process, restarted when it vanishes (results not doubled), cancellable."""

import os
import signal
import time

import pytest

from backend.evaluate.driver import advance_evaluations
from backend.evaluate.jobs import cancel_evaluation, create_evaluation, get_evaluation, samples
from backend.processes import is_alive

pytestmark = pytest.mark.slow  # three evaluation processes start (torch, lm-eval imports): about a minute


def _until(predicate, timeout=240):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_killed_evaluation_restarts_and_completes_once_and_a_cancel_stops_it(services, tiny_model):
    db, ws = services.database, services.workspace
    e = create_evaluation(db, ws, [str(tiny_model)], ["mc-en", "arithmetic"], limit=4)
    advance_evaluations(db, ws)
    first = get_evaluation(db, e.id)
    assert first.status == "running" and is_alive(first.pid, first.pid_started_at)
    os.killpg(first.pid, signal.SIGKILL)  # a reboot, as the process sees it
    _until(lambda: not is_alive(first.pid, first.pid_started_at))

    advance_evaluations(db, ws)  # the supervisor notices and queues it again
    assert get_evaluation(db, e.id).status == "queued"

    def step():
        advance_evaluations(db, ws)
        return get_evaluation(db, e.id).status not in ("queued", "running")

    _until(step)
    done = get_evaluation(db, e.id)
    assert done.status == "completed" and done.attempts == 2, done.reason
    assert [(r["suite"], r["n"]) for r in done.results] == [("mc-en", 4), ("arithmetic", 4)]
    assert len(samples(db, e.id)) == 8 and done.done == done.total == 8

    second = create_evaluation(db, ws, [str(tiny_model)], ["arithmetic"])
    advance_evaluations(db, ws)
    running = get_evaluation(db, second.id)
    assert running.status == "running"
    assert cancel_evaluation(db, second.id).status == "cancelled"
    _until(lambda: not is_alive(running.pid, running.pid_started_at))
    advance_evaluations(db, ws)
    assert get_evaluation(db, second.id).status == "cancelled"  # not restarted
    with pytest.raises(ValueError, match="only a queued or running one"):
        cancel_evaluation(db, second.id)
