"""Opening a domain's VNC display through libvirt: which hosts can, and what the others say."""

from __future__ import annotations

import pytest

from corral.errors import Conflict, HostError
from corral.virt import LibvirtHost
from corral.virt._vnc import passes_fds


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("qemu:///system", True),
        ("qemu+unix:///system?socket=/tmp/x/libvirt-sock", True),
        ("qemu:///session", True),
        ("test:///default", True),
        ("qemu+tls://h2/system", False),
        ("qemu+ssh://root@h2/system", False),
        ("qemu+tcp://198.18.0.2/system", False),
        ("qemu://h2/system", False),  # no transport with a host name means TLS
    ],
)
def test_fd_passing_needs_a_local_unix_socket(uri: str, local: bool) -> None:
    assert passes_fds(uri) is local


async def test_remote_hosts_are_refused_before_any_libvirt_call() -> None:
    host = LibvirtHost("h2", "qemu+tls://h2/system")  # never connected
    with pytest.raises(Conflict) as caught:
        await host.consoles.open_vnc("00000000-0000-0000-0000-000000000001")
    assert "host h2" in caught.value.message
    assert "qemu+tls://h2/system" in caught.value.message and "local" in caught.value.message


async def test_a_driver_without_graphics_fds_is_a_host_error(host: LibvirtHost) -> None:
    """libvirt's test driver cannot hand over graphics sockets: the error names the domain."""
    (record,) = [r for r in await host.list_domains() if r.name == "test"]
    with pytest.raises(HostError) as caught:
        await host.consoles.open_vnc(record.uuid)
    assert f"open the screen (VNC) of domain {record.uuid}" in caught.value.message
