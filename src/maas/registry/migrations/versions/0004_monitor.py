"""Reference statistics of a version (monitor: drift is judged against them).

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
    op.create_table(
        "reference_statistics",
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reference_statistics")
