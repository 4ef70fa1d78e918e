"""The database: created by the Alembic migration, SQLite in WAL mode with a busy timeout."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from db import Database, Run, RunStatus
from db.models import Base
from db.session import MIGRATIONS


def test_migration_creates_the_schema_and_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'tb.db'}"
    db = Database.open(url)
    Database.open(url)  # a second start migrates nothing and fails nothing
    tables = set(inspect(db.engine).get_table_names())
    assert {"datasets", "runs", "metric_points", "artifacts", "studies", "alembic_version"} <= tables
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with db.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert c.execute(text("select version_num from alembic_version")).scalar() == head
        # the migrations build exactly the schema the models describe: no model change without a migration
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_status_is_stored_as_enum(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'tb.db'}")
    with db.session() as s:
        s.add(Run(name="r", task="sft", model="m", method="lora", config={}, metrics={}))
    with db.session() as s:
        run = s.get(Run, 1)
        assert run.status is RunStatus.queued
        assert not run.status.finished
        assert RunStatus.interrupted.finished
