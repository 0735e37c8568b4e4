"""Console sessions: a browser's sign-in kept beside the keys, so a restart signs nobody out and every server
process on one registry knows every session. Only the session id's SHA-256 is stored; the key a session
signed in with is sealed under the session id itself (which only the browser's cookie holds).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False, index=True),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
