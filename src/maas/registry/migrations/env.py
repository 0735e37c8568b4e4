"""Alembic environment: always run on a connection the registry hands over (inside its migration lock)."""

from alembic import context

from maas.jobs.orm import JobRow  # noqa: F401  (registers the jobs table in Base.metadata)
from maas.registry.orm import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI against a URL, for developers writing migrations
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
