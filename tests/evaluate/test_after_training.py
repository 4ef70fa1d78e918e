"""Eval after training: a run naming suites gets base vs run scored when it completes, in its own metrics."""

import time

import pytest

from backend.evaluate.compare import differences
from backend.evaluate.jobs import list_evaluations
from backend.runs.queue import get_run
from backend.runs.supervisor import Supervisor
from db import RunStatus


@pytest.mark.slow  # a training process, then an evaluation process: about a minute
def test_a_run_naming_suites_is_scored_against_its_base_when_it_completes(services, queued, tiny_model):
    run_id = queued(max_steps=2, eval_suites="mc-en, arithmetic")
    supervisor = Supervisor(services.database, services.workspace)
    done = supervisor.run_until(run_id, timeout=300)
    assert done.status == RunStatus.completed
    # The worker adds the evaluation in the transaction that marks the run completed: whoever sees the run
    # completed (a search waiting for the trial's suite score) sees its evaluation too.
    (e,) = list_evaluations(services.database)
    assert e.run_id == run_id and e.models == [str(tiny_model), f"run:{run_id}"]
    deadline = time.monotonic() + 300
    while list_evaluations(services.database)[0].status in ("queued", "running"):
        assert time.monotonic() < deadline
        supervisor.tick()
        time.sleep(1)
    assert list_evaluations(services.database)[0].status == "completed"
    metrics = get_run(services.database, run_id).metrics  # written in the transaction that completed it
    assert [x["suite"] for x in metrics["evals"]] == ["mc-en", "arithmetic"]
    for x in metrics["evals"]:
        assert x["difference"] == pytest.approx(x["run"] - x["base"], abs=0.02)
        assert x["ci95"][0] <= x["difference"] <= x["ci95"][1]
    assert metrics["eval_mc-en"] == metrics["evals"][0]["run"]
    assert metrics["eval_mc-en_base"] == metrics["evals"][0]["base"] and "–" in metrics["eval_mc-en_ci95"]  # Compare


def test_a_drop_whose_interval_lies_below_zero_is_a_regression():
    results = [{"model": m, "suite": "general"} for m in ("base:b", "run:1")]
    rows = [{"model": "base:b", "suite": "general", "index": i, "score": 1.0} for i in range(30)]
    rows += [{"model": "run:1", "suite": "general", "index": i, "score": float(i < 10)} for i in range(30)]
    (d,) = differences(results, rows)
    assert d["baseline"] == "base:b" and d["difference"] == pytest.approx(-66.67, abs=0.01) and d["regression"]
    same = [r if r["model"] == "base:b" else {**r, "score": 1.0 if r["index"] != 0 else 0.0} for r in rows]
    assert not differences(results, same)[0]["regression"]  # one sample worse out of 30: not a regression
