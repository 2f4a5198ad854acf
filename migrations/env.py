"""Alembic environment built on SQLModel.metadata: every model module is imported so autogenerate sees it."""
from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.models  # noqa: F401  (registers tables)
import dv.models  # noqa: F401
import meetings.models  # noqa: F401
from core.db import get_engine
from core.settings import get_settings

from core.types import EnumText

config = context.config


def render_item(type_, obj, autogen_context):
    """Migrations must not import app code: an EnumText column is a plain VARCHAR in them."""
    if type_ == "type" and isinstance(obj, EnumText):
        return f"sa.String(length={obj.impl.length})"
    return False

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True, render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = get_engine(url)
    with engine.connect() as connection:
        # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table instead.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          compare_type=True, render_item=render_item)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
