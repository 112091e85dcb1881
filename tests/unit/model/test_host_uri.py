"""The host URI allow-list: what enrollment builds passes, everything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from corral.errors import InvalidRequest
from corral.model.host import LibvirtUri
from corral.services.hosts import HostUriPolicy
from corral.services.hosts._install import tls_uri

URI = TypeAdapter(LibvirtUri)
PKI = Path("/var/lib/corral/pki/manager/libvirt")
POLICY = HostUriPolicy(PKI, Path("/var/lib/corral/ssh"), allow_test_hosts=False)


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu:///session",
        tls_uri("192.0.2.12", PKI),
        tls_uri("2001:db8::12", PKI),
        tls_uri("h2.example.org", PKI),
        "qemu+tls://h2/system",
        "qemu+ssh://root@h2/system",
        "qemu+ssh://root@h2:2222/system?no_tty=1&keyfile=/var/lib/corral/ssh/id_ed25519",
    ],
)
def test_what_corral_builds_is_allowed(uri: str) -> None:
    assert URI.validate_python(uri) == uri
    POLICY.check(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "qemu+ext:///system?command=/tmp/x.sh",
        "qemu+unix:///system?socket=/tmp/s",
        "qemu+ssh://h2/system?socket=/tmp/s",
        "qemu+ssh://h2/system?command=/tmp/x.sh",
        "qemu+ssh://h2/system?netcat=/tmp/x.sh",
        "qemu+ssh://h2/system?no_verify=1",
        "qemu+ssh://h2/system?keyfile=/var/lib/corral/ssh/k%3Bcommand=/tmp/x.sh",
        "qemu+ssh://h2/system?keyfile=/var/lib/corral/ssh/k;command=/tmp/x.sh",
        "qemu+ssh://-oProxyCommand=sh/system",
        "qemu+ssh://h2/session",
        "qemu+tls://h2/system?pkipath=/p&pkipath=/q",
        "qemu+tls://h2/system?no_verify=1",
        "test:///etc/shadow",
        "test://h2/default",
        "qemu+tcp://h2/system",
        "qemu+libssh://h2/system",
        "vbox:///session",
    ],
)
def test_everything_else_is_refused_by_the_model_and_the_policy(uri: str) -> None:
    with pytest.raises(ValidationError):
        URI.validate_python(uri)
    with pytest.raises(InvalidRequest):
        POLICY.check(uri)


def test_the_policy_checks_directories_and_test_hosts() -> None:
    for uri in (
        "qemu+tls://h2/system?pkipath=/etc/pki/libvirt",
        "qemu+tls://h2/system?pkipath=/var/lib/corral/pki",
        "qemu+ssh://h2/system?keyfile=/root/.ssh/id_rsa",
        "qemu+ssh://h2/system?keyfile=/var/lib/corral/ssh",
        "test:///default",
    ):
        URI.validate_python(uri)  # well-formed …
        with pytest.raises(InvalidRequest):  # … but not for this Corral
            POLICY.check(uri)
    HostUriPolicy(PKI, Path("/var/lib/corral/ssh"), allow_test_hosts=True).check("test:///default")


def test_simulated_hosts_only_from_the_simulated_hosts_directory(tmp_path: Path) -> None:
    """``test:///PATH.xml`` (a simulated host's node description, read by libvirt in
    Corral's own process): with allow_test_hosts, and only a file in Corral's directory."""
    where = tmp_path / "simulated-hosts"
    where.mkdir()
    node = where / "sim-0001.xml"
    node.write_text("<node/>")
    outside = tmp_path / "elsewhere.xml"
    outside.write_text("<node/>")
    link = where / "link.xml"
    link.symlink_to(outside)
    ssh = Path("/var/lib/corral/ssh")
    allowed = HostUriPolicy(PKI, ssh, allow_test_hosts=True, simulated_dir=where)
    URI.validate_python(f"test://{node}")
    allowed.check(f"test://{node}")
    for uri in (
        f"test://{outside}",
        f"test://{link}",
        f"test://{where}/../elsewhere.xml",
        f"test://{where}/missing.xml",
    ):
        with pytest.raises(InvalidRequest):
            allowed.check(uri)
    with pytest.raises(InvalidRequest, match="allow_test_hosts"):
        HostUriPolicy(PKI, ssh, allow_test_hosts=False, simulated_dir=where).check(f"test://{node}")
    with pytest.raises(ValidationError):  # not a node description's name
        URI.validate_python(f"test://{where}/sim-0001")
