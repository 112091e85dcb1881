"""At start: is this instance's copy of the cluster's secrets the one the others hold?

The first instance on a database records the fingerprints of its CAs and power secrets key
(``pki/shared.py``). An instance whose differ — a second machine started with its own fresh
keys, a data directory restored from another cluster — is refused on PostgreSQL with what to
do; it would otherwise issue certificates hosts reject and fail to open the BMC passwords the
others sealed. On SQLite (one instance) the record simply follows the data directory.
"""

from __future__ import annotations

from pathlib import Path

from corral.errors import Conflict
from corral.pki.shared import ensure_power_key, fingerprints
from corral.services._db import Db
from corral.store.shared_secrets import record_fingerprints, recorded_names

_WHAT_TO_DO = (
    "every instance needs the same copy. On a running instance run `corral admin "
    "export-secrets FILE`, here `corral admin import-secrets FILE`, then start again"
)


async def refuse_missing_secrets(db: Db, data_dir: Path) -> None:
    """Before any key is made: Conflict when the cluster has recorded secrets this data
    directory lacks (a new instance's first start, before it imported them), rather than
    making keys of its own only to refuse them."""
    if db.store.engine.dialect.name != "postgresql":
        return
    missing = await db(recorded_names) - set(fingerprints(data_dir))
    if missing:
        raise Conflict(
            f"{data_dir} lacks the cluster's {', '.join(sorted(missing))} (another instance "
            f"shares this database): {_WHAT_TO_DO}"
        )


async def check_shared_secrets(db: Db, data_dir: Path, instance: str) -> None:
    """Conflict (the start stops) when a secret here differs from the cluster's."""
    ensure_power_key(data_dir)
    mine = fingerprints(data_dir)
    several = db.store.engine.dialect.name == "postgresql"
    differ = await db(lambda s: record_fingerprints(s, mine, instance, replace=not several))
    if not differ:
        return
    names = ", ".join(sorted(differ))
    first = next(iter(differ.values()))
    raise Conflict(
        f"this instance's {names} under {data_dir} differ from those of the cluster sharing "
        f"this database (recorded by instance {first[0]} at {first[1]}): {_WHAT_TO_DO}"
    )
