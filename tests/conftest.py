"""Fixtures shared by every test: a fresh registry per test, on SQLite and on the real PostgreSQL service."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("MAAS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_ADMIN_URL)
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[object]:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run should have started it)")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import sqlalchemy as sa

    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield eng
    eng.dispose()


@pytest.fixture
def pg_url(pg_admin: object) -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"maas_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MAAS_HOME for this test; nothing reads the user's real ~/.maas."""
    h = tmp_path / "maas-home"
    monkeypatch.setenv("MAAS_HOME", str(h))
    return h


@pytest.fixture
def registry(home: Path, database_url: str) -> Iterator[object]:
    from maas.registry import Registry

    reg = Registry.open(home, database_url=database_url)
    yield reg
    reg.close()
