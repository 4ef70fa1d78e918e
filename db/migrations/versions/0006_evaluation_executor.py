"""where an evaluation executes: this machine or a Ray cluster (its job id)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("executor", sa.String(length=20), nullable=False, server_default="local"))
        batch.add_column(sa.Column("cluster_job_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("cluster_job_id")
        batch.drop_column("executor")
