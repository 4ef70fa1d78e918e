"""where a run executes: this machine or a cluster (Ray job id, number of workers)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("executor", sa.String(length=20), nullable=False, server_default="local"))
        batch.add_column(sa.Column("cluster_job_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("workers", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("workers")
        batch.drop_column("cluster_job_id")
        batch.drop_column("executor")
