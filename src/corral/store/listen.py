"""PostgreSQL ``LISTEN``: the payloads of a channel's notifications, on a connection of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL

from corral.store.db import Store, pg_connect_args


def conninfo(url: URL) -> str:
    """libpq's URI for a SQLAlchemy URL (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(store: Store, channel: str) -> AsyncIterator[str]:
    """Payloads as they come; the first item is ``""`` once listening (so a caller can catch
    up on what came before without missing anything after). Raises ``psycopg.Error`` when the
    connection is lost."""
    url = store.engine.url
    # Keepalives matter most here: a LISTEN connection only ever waits, and one silently cut
    # would wait for ever instead of reconnecting and catching up.
    dsn = make_conninfo(conninfo(url), **pg_connect_args(url))
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield ""
        async for notify in conn.notifies():
            yield notify.payload
    finally:
        await conn.close()
