"""Engine set-up and schema migration for the registry database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import StaticPool

from maas.errors import InvalidArgument

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works: it names the advisory lock that serialises migrations across processes on PostgreSQL.
_PG_MIGRATION_LOCK = 0x6D616173


def make_engine(url: str) -> Engine:
    """An engine tuned for the registry: WAL + busy timeout + IMMEDIATE writes on SQLite."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidArgument(f"invalid database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if not db or db == ":memory:":  # one shared connection, or every checkout would see a new database
            engine = create_engine(parsed, connect_args={"check_same_thread": False}, poolclass=StaticPool)
        else:
            engine = create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})
        _tune_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two of them never deadlock upgrading a read lock.
        if conn.get_execution_options().get("write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when many processes open a fresh registry at once."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with engine.execution_options(write=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
