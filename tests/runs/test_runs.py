"""Runs in the database, on SQLite and on a real PostgreSQL: queue order, priority, paging, compare,
resume as a new run, delete, the free-disk refusal, and 100 submissions from several processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.config import DEFAULT_LR, RunConfig
from backend.data import import_file
from backend.runs.query import RunQuery, RunsNotFound, checkpoints, compare, list_page, queue_position, summary
from backend.runs.queue import cancel_run, create_run, delete_run, get_run, resume_run, set_priority
from backend.services import Services
from db import MetricPoint, Run, RunStatus
from db.models import Base, utcnow
from tests.conftest import ROOT, write_alpaca
from webui.tabs.runs_views import final_metrics, when


@pytest.fixture
def services(workspace, database_url):
    """The workspace's services on SQLite, then again on PostgreSQL (see tests/pgserver.py)."""
    return Services.open(workspace)


@pytest.fixture
def submit(services, tiny_model, tmp_path):
    import_file(services.database, services.workspace, write_alpaca(tmp_path / "sums.json", n=8), name="sums")

    def make(priority: int = 0, name: str = "", **settings) -> int:
        cfg = RunConfig(dataset="sums", model=str(tiny_model), max_steps=2, **settings)
        return create_run(services.database, services.workspace, cfg, name=name, priority=priority).id

    return make


def finish(services, run_id: int, status: RunStatus = RunStatus.completed, **fields) -> None:
    with services.database.session() as s:
        run = s.get(Run, run_id)
        run.status, run.finished_at, run.started_at = status, utcnow(), utcnow()
        for k, v in fields.items():
            setattr(run, k, v)


def test_schema_matches_the_models(services):
    with services.database.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_queue_order_is_priority_then_age_and_priority_changes_while_queued(services, submit):
    a, b, c = submit(), submit(priority=5), submit()
    order = lambda: [r.id for r in list_page(services.database, RunQuery(status="queued", sort="priority")).runs]  # noqa: E731
    assert order() == [b, a, c]
    assert [queue_position(services.database, get_run(services.database, i)) for i in (a, b, c)] == [2, 1, 3]
    set_priority(services.database, c, 9)
    assert order() == [c, b, a]
    assert cancel_run(services.database, a).status == RunStatus.cancelled  # a queued run never starts
    assert order() == [c, b]
    with pytest.raises(ValueError, match="only a queued run's priority"):
        set_priority(services.database, a, 1)


def test_list_filters_searches_sorts_and_pages_in_the_database(services, submit):
    ids = [submit(name=f"run-{i:02d}") for i in range(12)]
    finish(services, ids[3], metrics={"final_loss": 0.5})
    finish(services, ids[4], RunStatus.failed, metrics={"final_loss": 0.2})
    page = list_page(services.database, RunQuery(limit=5, offset=5))
    assert page.total == 12 and [r.id for r in page.runs] == ids[::-1][5:10]
    assert [r.id for r in list_page(services.database, RunQuery(status="failed")).runs] == [ids[4]]
    assert list_page(services.database, RunQuery(search="run-07")).total == 1
    assert list_page(services.database, RunQuery(search="SUMS")).total == 12  # the dataset's name, any case
    assert list_page(services.database, RunQuery(dataset="sums", task="sft")).total == 12
    assert [r.id for r in list_page(services.database, RunQuery(sort="final_loss", limit=2)).runs] == [ids[4], ids[3]]
    with pytest.raises(ValueError, match="status 'done'"):
        RunQuery(status="done")


def test_compare_shows_the_settings_that_differ_and_the_curves(services, submit):
    a, b = submit(learning_rate=1e-3), submit(learning_rate=2e-3, lora_rank=4)
    with services.database.session() as s:
        s.add_all(
            [
                MetricPoint(run_id=a, step=1, name="loss", value=2.0),
                MetricPoint(run_id=b, step=1, name="loss", value=1.5),
            ]
        )
    out = compare(services.database, [a, b])
    assert out["config_diff"] == {"learning_rate": [1e-3, 2e-3], "lora_rank": [16, 4]}
    assert out["config_same"]["dataset"] == "sums"
    assert out["curves"]["loss"] == {str(a): [[1, 2.0]], str(b): [[1, 1.5]]}
    default, full = submit(), submit(method="full")  # no learning rate given: each records the one it uses
    assert compare(services.database, [default, full])["config_diff"]["learning_rate"] == [
        DEFAULT_LR["lora"],
        DEFAULT_LR["full"],
    ]
    with pytest.raises(ValueError, match="2 to 5"):
        compare(services.database, [a])
    with pytest.raises(RunsNotFound, match="999 not found") as missing:
        compare(services.database, [a, 999])
    assert missing.value.missing == [999]  # what the Compare page names as deleted


def test_resume_as_new_starts_from_the_parents_checkpoint_with_its_curve(services, submit):
    parent = submit()
    finish(services, parent, RunStatus.interrupted, step=4, total_steps=10)
    ckpt = services.workspace.run_dir(parent) / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt.parent / "checkpoint-6").mkdir()  # a worker killed while saving: no trainer_state.json, skipped
    assert [c["step"] for c in checkpoints(services.workspace, parent)] == [4]
    with services.database.session() as s:
        s.add_all([MetricPoint(run_id=parent, step=i, name="loss", value=3.0 - i / 10) for i in range(1, 6)])
    child = resume_run(services.database, parent, as_new=True, workspace=services.workspace)
    assert child.parent_id == parent and child.status == RunStatus.queued and child.step == 4
    assert (services.workspace.run_dir(child.id) / "checkpoints" / "checkpoint-4" / "trainer_state.json").is_file()
    with services.database.session() as s:
        steps = sorted(p.step for p in s.query(MetricPoint).filter_by(run_id=child.id))
    assert steps == [1, 2, 3, 4]  # the curve up to the checkpoint; step 5 is trained again
    assert get_run(services.database, parent).status == RunStatus.interrupted  # the parent is left as it was
    bare = submit()
    finish(services, bare, RunStatus.failed)
    with pytest.raises(ValueError, match="no checkpoint"):
        resume_run(services.database, bare, as_new=True, workspace=services.workspace)


def test_a_resumed_run_counts_the_time_it_trained_before(services, submit):
    run_id = submit()
    start = utcnow() - timedelta(minutes=10)
    finish(services, run_id, RunStatus.interrupted, started_at=start, finished_at=start + timedelta(minutes=4))
    resume_run(services.database, run_id)
    queued = summary(get_run(services.database, run_id))
    assert queued["status"] == "queued" and queued["duration_seconds"] == 240.0
    restart = utcnow() - timedelta(minutes=3)
    finish(services, run_id, RunStatus.completed, started_at=restart, finished_at=restart + timedelta(minutes=2))
    shown = summary(get_run(services.database, run_id), detail=True)
    assert shown["duration_seconds"] == 360.0  # 4 + 2 minutes
    assert shown["wait_seconds"] is None  # its latest start is not when it first left the queue
    assert when(shown["started_at"]) == f"{restart:%Y-%m-%d %H:%M:%S} UTC"
    assert "earlier_seconds" not in final_metrics(get_run(services.database, run_id).metrics)  # not a result
    # A worker found dead hours after its last heartbeat (the app was down) trained until that heartbeat.
    dead = submit()
    begun = utcnow() - timedelta(hours=5)
    finish(services, dead, RunStatus.interrupted, started_at=begun, heartbeat_at=begun + timedelta(minutes=3))
    assert summary(get_run(services.database, dead))["duration_seconds"] == 190.0  # 3 min + 10 s slack, not 5 h


def test_delete_removes_a_finished_run_with_its_files_and_refuses_an_active_one(services, submit):
    done, active = submit(), submit()
    finish(services, done)
    folder, export = services.workspace.run_dir(done), services.workspace.export_dir(done)
    (folder / "adapter").mkdir(parents=True)
    export.mkdir(parents=True)
    with services.database.session() as s:
        s.add(MetricPoint(run_id=done, step=1, name="loss", value=1.0))
    assert delete_run(services.database, services.workspace, done)["deleted"]
    assert not folder.exists() and not export.exists()
    with services.database.session() as s:
        assert s.get(Run, done) is None and s.query(MetricPoint).filter_by(run_id=done).count() == 0
    with pytest.raises(ValueError, match="is queued; cancel it first"):
        delete_run(services.database, services.workspace, active)
    assert get_run(services.database, active).status == RunStatus.queued


def test_low_disk_refuses_a_run_and_writes_nothing(services, submit, monkeypatch):
    monkeypatch.setenv("TUNEBOARD_MIN_FREE_GB", "1e9")
    with pytest.raises(ValueError, match="GB free on the disk of .*TUNEBOARD_MIN_FREE_GB"):
        submit()
    with services.database.session() as s:
        assert s.query(Run).count() == 0


SUBMITTER = textwrap.dedent(
    """
    import json, sys
    from backend.config import RunConfig
    from backend.runs.queue import create_run
    from backend.services import Services
    services = Services.open(sys.argv[1])
    ids = []
    for i in range(int(sys.argv[3])):
        cfg = RunConfig(dataset="sums", model=sys.argv[2], max_steps=2)
        ids.append(create_run(services.database, services.workspace, cfg, priority=i % 3).id)
    print(json.dumps(ids))
    """
)


def test_100_runs_submitted_from_4_processes_at_once_all_land_in_queue_order(services, submit, tiny_model):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(services.workspace.root), str(tiny_model), "25"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and "locked" not in err, err[-2000:]
    per_process = [json.loads(out) for out, _ in outputs]
    assert all(ids == sorted(ids) for ids in per_process)  # each process's runs in its submission order
    everything = sorted(i for ids in per_process for i in ids)
    assert len(set(everything)) == 100
    page = list_page(services.database, RunQuery(status="queued", sort="priority", limit=500))
    assert page.total == 100
    with services.database.session() as s:
        expected = [r.id for r in sorted(s.query(Run).all(), key=lambda r: (-r.priority, r.id))]
    assert [r.id for r in page.runs] == expected
    assert [page.positions[r.id] for r in page.runs] == list(range(1, 101))


def test_cli_queue_priority_show_compare_and_delete(tmp_path, tiny_model, monkeypatch):
    """The runs commands as a user types them (SQLite): JSON out, one-line errors with exit 2."""
    from tests.conftest import cli, cli_json

    monkeypatch.delenv("DATABASE_URL", raising=False)
    ws = tmp_path / "ws"
    cli_json(ws, "datasets", "add", str(write_alpaca(tmp_path / "sums.json", n=8)), "--name", "sums")
    first, second = (cli_json(ws, "train", "--dataset", "sums", "--model", str(tiny_model))["id"] for _ in range(2))
    moved = cli_json(ws, "runs", "priority", str(second), "3")
    assert moved["priority"] == 3 and moved["queue_position"] == 1
    shown = cli_json(ws, "runs", "show", str(first))
    assert shown["status"] == "queued" and shown["queue_position"] == 2 and shown["pid"] is None
    assert {"reason", "step", "total_steps", "metrics", "config", "log_tail"} <= set(shown)
    queued = cli_json(ws, "runs", "list", "--status", "queued", "--sort", "priority")
    assert [(r["id"], r["queue_position"]) for r in queued] == [(second, 1), (first, 2)]
    assert cli_json(ws, "runs", "compare", str(first), str(second))["config_diff"] == {}
    refused = cli(ws, "runs", "delete", str(first))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "cancel it first" in refused.stderr
    cli_json(ws, "runs", "cancel", str(first))
    assert cli_json(ws, "runs", "delete", str(first))["deleted"]
    assert [r["id"] for r in cli_json(ws, "runs", "list")] == [second]


def test_playground_and_export_lists_select_a_run_that_completed_since_they_were_shown(services, submit):
    from webui.choices import completed_runs

    first = submit()
    finish(services, first)
    dropdown, shown = completed_runs(services, None)
    assert dropdown.value == first and shown == [first]
    later, earlier = submit(), submit()
    finish(services, earlier)
    dropdown, shown = completed_runs(services, first, None, shown)
    assert dropdown.value == earlier  # completed since the list was shown
    finish(services, later)
    dropdown, shown = completed_runs(services, earlier, None, shown)
    assert dropdown.value == later  # finished after a run with a higher id, still the one selected
    with services.database.session() as s:  # a finished classifier: exported, never offered for chat
        classifier = Run(
            name="cls", status=RunStatus.completed, task="text-classification", model="m", method="full", config={}
        )
        s.add(classifier)
        s.flush()
        classifier = classifier.id
    assert classifier in completed_runs(services, None)[1]
    assert classifier not in completed_runs(services, None, "sft")[1]


def test_runs_without_a_name_are_numbered_so_lists_tell_them_apart(services, submit):
    ids = [submit() for _ in range(3)]
    assert [get_run(services.database, i).name for i in ids] == ["lora-sums", "lora-sums-2", "lora-sums-3"]
    finish(services, ids[1])
    delete_run(services.database, services.workspace, ids[1])  # a gap: the next is still a new number
    assert get_run(services.database, submit(name="lora-sums-best")).name == "lora-sums-best"
    assert get_run(services.database, submit()).name == "lora-sums-4"


def test_the_compare_picker_offers_the_run_lists_matches_first_then_the_newest(services, submit, monkeypatch):
    from webui.tabs import runs_compare

    monkeypatch.setattr(runs_compare, "PICKER_SIZE", 2)  # as if there were thousands of runs

    def offered(chosen=None, filters=None) -> list[int]:
        return [run_id for _, run_id in runs_compare._choices(services, chosen, filters)]

    lr0, lr1, lr2 = (submit(name=f"lr-sweep-{i}") for i in range(3))
    other = submit(name="baseline")
    finish(services, lr0)
    assert offered() == [other, lr2]  # the newest
    assert offered([], {"search": "sweep", "status": None}) == [lr2, lr1, other]  # matches first, each once
    assert offered([lr0], {"search": "", "status": "completed"}) == [lr0, other, lr2]
    assert offered([lr0]) == [other, lr2, lr0]  # a chosen run stays offered, with its name
    assert runs_compare._choices(services, [lr0])[-1][0] == f"#{lr0} lr-sweep-0 (completed)"
