"""dataset versions, run queue fields, studies

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("task", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("best_run_id", sa.Integer(), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_studies_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
    )
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_datasets_parent_id_datasets"), "datasets", ["parent_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("devices", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("study_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("trial_number", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_runs_parent_id_runs"), "runs", ["parent_id"], ["id"], ondelete="SET NULL")
        batch.create_foreign_key(
            batch.f("fk_runs_study_id_studies"), "studies", ["study_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(batch.f("ix_runs_study_id"), ["study_id"])
        batch.create_index("ix_runs_status_priority_id", ["status", "priority", "id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_priority_id")
        batch.drop_index(batch.f("ix_runs_study_id"))
        batch.drop_constraint(batch.f("fk_runs_study_id_studies"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_runs_parent_id_runs"), type_="foreignkey")
        for column in ("trial_number", "study_id", "parent_id", "devices", "priority"):
            batch.drop_column(column)
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint(batch.f("fk_datasets_parent_id_datasets"), type_="foreignkey")
        batch.drop_column("parent_id")
        batch.drop_column("version")
    op.drop_table("studies")
