"""The database: created by the Alembic migration, SQLite in WAL mode with a busy timeout."""

from sqlalchemy import inspect, text

from db import Database, Run, RunStatus


def test_migration_creates_the_schema_and_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'tb.db'}"
    db = Database.open(url)
    Database.open(url)  # a second start migrates nothing and fails nothing
    tables = set(inspect(db.engine).get_table_names())
    assert {"datasets", "runs", "metric_points", "artifacts", "alembic_version"} <= tables
    with db.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert c.execute(text("select version_num from alembic_version")).scalar() == "0001"


def test_status_is_stored_as_enum(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'tb.db'}")
    with db.session() as s:
        s.add(Run(name="r", task="sft", model="m", method="lora", config={}, metrics={}))
    with db.session() as s:
        run = s.get(Run, 1)
        assert run.status is RunStatus.queued
        assert not run.status.finished
        assert RunStatus.interrupted.finished
