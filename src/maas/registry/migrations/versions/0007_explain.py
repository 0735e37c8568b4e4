"""Explanation background sets: rows sampled from training or evaluation data, one set per version, kept
apart from the version's immutable artifacts (a background can be set or replaced after publishing).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "explain_backgrounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("versions.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("source", sa.String(256), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("explain_backgrounds")
