"""Hyperparameter search: studies whose trials are real runs in real worker processes (Optuna, SQLite)."""

import itertools
import json
import re
import time

import pytest
from sqlalchemy import func, select

from backend.data import import_file
from backend.runs.queue import get_run
from backend.runs.supervisor import Supervisor
from backend.search.results import study_figures, study_report
from backend.search.studies import SearchOptions, create_study, stop_study
from db import Run, RunStatus, Study
from tests.conftest import cli, cli_json, write_alpaca


@pytest.fixture
def sums(services, tmp_path):
    """16 sums, a quarter held out for validation (what eval_loss is measured on)."""
    import_file(services.database, services.workspace, write_alpaca(tmp_path / "sums.json", n=16), name="sums")
    return "sums"


def base(tiny_model, **more):
    return {"dataset": "sums", "model": str(tiny_model), "batch_size": 4, "lora_rank": 4, "val_ratio": 0.25, **more}


def counts(services) -> tuple[int, int]:
    with services.database.session() as s:
        return s.scalar(select(func.count(Study.id))), s.scalar(select(func.count(Run.id)))


BAD_SPACES = [
    ({"lora_rank": {"type": "categorical", "choices": []}}, "grid", "'lora_rank': 'choices' is empty"),
    ({"learning_rate": {"type": "float", "low": 0.1, "high": 0.001}}, "tpe", "low (0.1) is above high (0.001)"),
    ({"learning_rte": {"type": "float", "low": 1e-4, "high": 1e-3}}, "tpe", "unknown parameter 'learning_rte'"),
    ({"learning_rate": {"type": "float", "low": 0, "high": 0.1, "log": True}}, "tpe", "log range must start above 0"),
    ({"warmup_ratio": {"type": "float", "low": 0.0, "high": 1.5}}, "random", "'warmup_ratio' value 1.5 is refused"),
    ({"optimizer": {"type": "categorical", "choices": ["adamw", "adamx"]}}, "tpe", "'adamx' is refused"),
    ({"lora_rank": {"type": "float", "low": 2, "high": 8}}, "tpe", "lora_rank is a whole number; use type: int"),
    ({"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}}, "grid", "'learning_rate' is a continuous range"),
    ({"freeze_layers": {"type": "int", "low": 0, "high": 9}}, "tpe", "freeze_layers = 9 would be refused"),
    ({}, "tpe", "the search space is empty"),
]


@pytest.mark.parametrize(("space", "sampler", "message"), BAD_SPACES)
def test_an_invalid_space_is_refused_by_name_before_any_trial(services, sums, tiny_model, space, sampler, message):
    method = "freeze" if "freeze_layers" in space else "lora"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_study(
            services.database,
            services.workspace,
            base(tiny_model, method=method, max_steps=2),
            space,
            SearchOptions(sampler=sampler),
        )
    assert counts(services) == (0, 0)


def test_the_cli_refuses_a_bad_space_file_and_a_metric_without_validation(services, sums, tiny_model, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {type: float, low: 0.01, high: 0.0001, log: true}\n")
    args = ["search", "--space", str(space), "--dataset", "sums", "--model", str(tiny_model), "--max-steps", "2"]
    bad = cli(services.workspace.root, *args, "--val-ratio", "0.25")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "search space: 'learning_rate': low (0.01) is above high (0.0001)" in bad.stderr
    space.write_text("learning_rate: {type: float, low: 0.0001, high: 0.01, log: true}\n")
    no_val = cli(services.workspace.root, *args)  # sums has no validation split and val_ratio is 0
    assert no_val.returncode == 2 and "has none: set val_ratio" in no_val.stderr, no_val.stderr
    assert counts(services) == (0, 0)


def test_a_pruned_search_evaluates_each_trial_several_times_also_without_max_steps(services, sums, tiny_model):
    space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    # 16 rows, a quarter held out: 12 to train on, 3 steps of 4 per epoch, 24 steps in 8 epochs
    study = create_study(services.database, services.workspace, base(tiny_model, epochs=8), space, SearchOptions())
    settings = study_report(services.database, services.workspace, study.id)["settings"]
    assert settings["eval_steps"] == 24 // 4 and settings["eval_samples"] == 0  # no answers generated per trial
    off = create_study(
        services.database, services.workspace, base(tiny_model, epochs=8), space, SearchOptions(prune=False)
    )
    assert "eval_steps" not in study_report(services.database, services.workspace, off.id)["settings"]


def test_no_trial_starts_once_the_time_budget_has_run_out(services, sums, tiny_model):
    space = {"lora_rank": {"type": "categorical", "choices": [2, 4]}}
    opts = SearchOptions(sampler="grid", prune=False, timeout_minutes=0.0001)  # 6 ms: over before the first tick
    study = create_study(services.database, services.workspace, base(tiny_model, max_steps=2), space, opts)
    time.sleep(0.05)
    Supervisor(services.database, services.workspace).tick()
    out = study_report(services.database, services.workspace, study.id)
    assert out["status"] == "failed" and out["trials"] == []
    assert out["reason"] == "the time budget of 0.0001 min ran out after 0 of 2 trials"
    assert counts(services) == (1, 0)  # the study, and no run


@pytest.mark.slow
def test_a_grid_search_runs_exactly_the_grid_as_ordinary_runs(services, sums, tiny_model, tmp_path):
    space = {
        "lora_rank": {"type": "categorical", "choices": [2, 4]},
        "learning_rate": {"type": "categorical", "choices": [0.001, 0.02]},
    }
    (tmp_path / "space.json").write_text(json.dumps(space))
    out = cli_json(
        services.workspace.root,
        *["search", "--space", str(tmp_path / "space.json"), "--sampler", "grid", "--no-prune"],
        *["--dataset", "sums", "--model", str(tiny_model), "--max-steps", "3", "--batch-size", "4"],
        *["--val-ratio", "0.25", "--wait"],
        timeout=600,
    )
    assert out["status"] == "completed", out
    grid = {(r, lr) for r, lr in itertools.product([2, 4], [0.001, 0.02])}
    assert sorted((t["params"]["lora_rank"], t["params"]["learning_rate"]) for t in out["trials"]) == sorted(grid)
    assert [t["state"] for t in out["trials"]] == ["complete"] * 4
    for t in out["trials"]:  # each trial is a run of its own, trained with the trial's settings
        run = get_run(services.database, t["run_id"])
        assert run.status == RunStatus.completed and (run.study_id, run.trial_number) == (out["id"], t["number"])
        assert (run.config["lora_rank"], run.config["learning_rate"]) == (
            t["params"]["lora_rank"],
            t["params"]["learning_rate"],
        )
        assert run.metrics["eval_loss"] == pytest.approx(t["value"])
    best = min(out["trials"], key=lambda t: t["value"])
    assert (out["best_value"], out["best_params"], out["best_run_id"]) == (
        best["value"],
        best["params"],
        best["run_id"],
    )
    run = cli_json(services.workspace.root, "runs", "show", str(out["trials"][0]["run_id"]))
    assert (run["study_id"], run["trial_number"]) == (out["id"], 0)  # `runs show` names its search
    shown = cli_json(services.workspace.root, "search", "show", str(out["id"]))
    assert shown["trials"] == out["trials"]
    assert [s["id"] for s in cli_json(services.workspace.root, "search", "list")] == [out["id"]]


def tick_until(sup, done, timeout=600):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the search did not get there in time"
        sup.tick()
        time.sleep(0.3)


@pytest.mark.slow
def test_a_search_prunes_bad_trials_survives_a_restart_and_finds_the_good_region(services, sums, tiny_model):
    # Learning rates from 1e-6 (the tiny model barely moves in 24 steps) to 3e-2 (it learns the sums fast).
    space = {"learning_rate": {"type": "float", "low": 1e-6, "high": 3e-2, "log": True}}
    opts = SearchOptions(sampler="random", trials=6, prune=True, prune_startup=2, seed=3)
    settings = base(tiny_model, method="full", max_steps=24, grad_accum=2)  # a tick sees each point in time
    study = create_study(services.database, services.workspace, settings, space, opts)
    assert study_report(services.database, services.workspace, study.id)["settings"]["eval_steps"] == 6

    def report():
        return study_report(services.database, services.workspace, study.id)

    first = Supervisor(services.database, services.workspace)
    tick_until(first, lambda: len(report()["trials"]) >= 3)
    first.stop()  # the app stops mid-search: a new supervisor carries on from the databases
    second = Supervisor(services.database, services.workspace)
    tick_until(second, lambda: report()["status"] != "running")
    second.stop()

    out = report()
    assert out["status"] == "completed", out["reason"]
    assert len(out["trials"]) == 6 and out["counts"].get("complete", 0) + out["counts"].get("pruned", 0) == 6
    with services.database.session() as s:
        runs = {r.trial_number: r for r in s.scalars(select(Run).where(Run.study_id == study.id))}
    assert sorted(runs) == [t["number"] for t in out["trials"]]  # every trial is a run of this study
    pruned = [t for t in out["trials"] if t["state"] == "pruned"]
    assert pruned, out["trials"]
    for t in pruned:  # judged at an evaluation before the last step, and its run cancelled with the reason
        run = get_run(services.database, t["run_id"])
        assert run.status == RunStatus.cancelled and t["evaluations"] < 4
        assert re.match(rf"pruned by search {study.id} at step (6|12|18): its eval_loss", run.reason), run.reason
        # (how many steps it trained on depends on when its worker saw the cancel: on a loaded CPU, to the end)
    values = [t["value"] for t in out["trials"] if t["state"] == "complete"]
    assert out["best_value"] == min(values)
    worst = max(t["value"] for t in out["trials"])
    assert worst - out["best_value"] > 1.0, out["trials"]  # a wide margin, in nats of validation loss
    assert out["best_params"]["learning_rate"] > 1e-3
    figures = study_figures(services.database, services.workspace, study.id)
    assert figures["history"] is not None and figures["parallel"] is not None


@pytest.mark.slow
def test_stopping_a_search_cancels_its_running_trial_and_queues_no_more(services, sums, tiny_model):
    space = {"lora_rank": {"type": "categorical", "choices": [2, 4, 8]}}
    opts = SearchOptions(sampler="grid", prune=False)
    study = create_study(services.database, services.workspace, base(tiny_model, max_steps=5000), space, opts)
    sup = Supervisor(services.database, services.workspace)
    try:

        def running():
            with services.database.session() as s:
                return s.scalar(select(Run).where(Run.study_id == study.id, Run.status == RunStatus.running))

        tick_until(sup, lambda: running() is not None and running().step > 0, timeout=120)
        run_id = running().id
        stop_study(services.database, services.workspace, study.id)
        tick_until(sup, lambda: get_run(services.database, run_id).status.finished, timeout=120)
        for _ in range(3):
            sup.tick()
    finally:
        sup.stop()
    out = study_report(services.database, services.workspace, study.id)
    assert out["status"] == "stopped" and out["reason"] == "stopped by the user"
    assert get_run(services.database, run_id).status == RunStatus.cancelled
    assert [t["state"] for t in out["trials"]] == ["fail"]  # no second trial was queued
    with pytest.raises(ValueError, match=f"search {study.id} is stopped"):
        stop_study(services.database, services.workspace, study.id)
