"""One libvirt daemon registered under two names (a database from before Corral checked):
the second registration is kept disconnected and its domains are adopted once."""

from __future__ import annotations

from pathlib import Path

from corral import store
from corral.config import Settings
from corral.services.runtime import Services


async def test_a_daemon_registered_twice_is_used_once(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        local_host_name="first",
        local_host_uri="test:///default",
        pool_dir=str(tmp_path / "pool"),
        reconcile_interval_s=3600,
    )
    services = Services(settings)
    # As an older Corral stored them: two names, one daemon, no identity recorded.
    services.db.sync(lambda s: store.add_host(s, "first", "test:///default"))
    services.db.sync(lambda s: store.add_host(s, "second", "test:///default"))
    await services.start()
    try:
        hosts = {h.name: h for h in await services.hosts.list_hosts()}
        assert hosts["first"].connected
        assert not hosts["second"].connected
        assert "already registered as 'first'" in (hosts["second"].last_error or "")
        await services.reconciler.reconcile_all()
        vms = await services.vms.inventory.list_vms()
        # The test driver's predefined domain "test", adopted once, on the first host.
        assert [(v.name, v.host) for v in vms] == [("test", "first")]
    finally:
        await services.stop()
