"""Search with an eval suite's score as the objective: each trial's run is evaluated when it completes, and
the driver tells Optuna the suite score only once that evaluation has written it into the run's metrics."""

import json
import time

import pytest

from backend.data import import_file
from backend.evaluate.jobs import list_evaluations
from backend.runs.queue import get_run
from backend.runs.supervisor import Supervisor
from backend.search.results import study_report
from backend.search.studies import SearchOptions, create_study
from tests.conftest import write_alpaca


@pytest.fixture
def setup(services, tmp_path, tiny_model):
    import_file(services.database, services.workspace, write_alpaca(tmp_path / "sums.json", n=8), name="sums")
    suite = tmp_path / "tiny.jsonl"
    rows = [{"prompt": f"What is {i} plus {i}?", "reference": str(2 * i)} for i in range(3)]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"dataset": "sums", "model": str(tiny_model), "batch_size": 4, "lora_rank": 4, "max_steps": 2,
                "eval_suites": str(suite)}  # fmt: skip
    return settings


def test_a_suite_objective_cannot_prune_and_a_shipped_suite_is_added_to_the_runs(services, setup):
    space = {"learning_rate": {"type": "categorical", "choices": [0.001, 0.01]}}
    with pytest.raises(ValueError, match="eval_tiny.jsonl is scored once, at the end of a trial"):
        create_study(services.database, services.workspace, setup, space, SearchOptions(metric="eval_tiny.jsonl"))
    study = create_study(
        services.database, services.workspace, setup, space, SearchOptions(metric="eval_arithmetic", prune=False)
    )
    assert study.config["settings"]["eval_suites"].split(",")[-1] == "arithmetic"  # no validation split needed


@pytest.mark.slow  # two trial runs and two evaluations, each its own process: about two minutes
def test_each_trial_is_told_its_suite_score_after_its_evaluation(services, setup):
    space = {"learning_rate": {"type": "categorical", "choices": [0.001, 0.01]}}
    opts = SearchOptions(metric="eval_tiny.jsonl", direction="maximize", sampler="grid", prune=False)
    study = create_study(services.database, services.workspace, setup, space, opts)
    sup = Supervisor(services.database, services.workspace)
    deadline = time.monotonic() + 900
    while study_report(services.database, services.workspace, study.id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the search did not end in time"
        sup.tick()
        time.sleep(0.5)
    out = study_report(services.database, services.workspace, study.id)
    assert out["status"] == "completed", out
    assert [t["state"] for t in out["trials"]] == ["complete"] * 2
    evaluations = {e.run_id: e for e in list_evaluations(services.database)}
    for t in out["trials"]:
        run = get_run(services.database, t["run_id"])
        assert evaluations[run.id].status == "completed" and run.metrics["evals"][0]["suite"] == "tiny.jsonl"
        assert t["value"] == pytest.approx(run.metrics["eval_tiny.jsonl"])  # the suite score, not a loss
        result = next(r for r in evaluations[run.id].results if r["model"] == f"run:{run.id}")
        assert t["value"] == pytest.approx(result["score"])
