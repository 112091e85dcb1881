"""Migration transports: what each built-in plans, what it refuses, how plugins are found."""

from __future__ import annotations

import sys
import textwrap
import tomllib
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import libvirt
import pytest

from corral.model.migration import MigrationRequest, StorageMode
from corral.services.migrations.migrate import fit_plan
from corral.virt import _migrate
from corral.virt.transports import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    InsecureTransport,
    MigrationEndpoint,
    MigrationFlag,
    MigrationTransport,
    SshTransport,
    TlsTransport,
    load_transports,
)

REPO = Path(__file__).resolve().parents[3]
F = MigrationFlag
H1 = MigrationEndpoint(
    "h1", "198.18.0.1", "qemu+tls://198.18.0.1/system", True, "root@198.18.0.1", 22
)
H2 = MigrationEndpoint(
    "h2", "198.18.0.2", "qemu+tls://198.18.0.2/system", True, "root@198.18.0.2", 2222
)
LOCAL = MigrationEndpoint("local", None, "qemu:///system")
COMMON = {F.LIVE, F.PEER2PEER, F.PERSIST_DEST, F.UNDEFINE_SOURCE, F.ABORT_ON_ERROR}


def _request(**fields: object) -> MigrationRequest:
    return MigrationRequest.model_validate({"to": "h2", **fields})


def test_tls_is_peer_to_peer_with_qemu_tls_to_the_enrolled_address() -> None:
    plan = TlsTransport().plan(H1, H2, _request())
    assert plan.destination_uri == "qemu+tls://198.18.0.2/system"
    assert plan.stream_uri == "tcp://198.18.0.2"
    assert plan.flags == COMMON | {F.TLS, F.AUTO_CONVERGE}
    assert plan.parallel_connections is None and plan.xbzrle_cache_bytes is None
    assert plan.max_downtime_ms == 300
    assert plan.bandwidth_mib_s is None
    assert TlsTransport.encrypted


def test_ipv6_addresses_go_in_brackets() -> None:
    v6 = MigrationEndpoint("h6", "2001:db8::6", "qemu+tls://[2001:db8::6]/system", True)
    plan = TlsTransport().plan(H1, v6, _request())
    assert plan.destination_uri == "qemu+tls://[2001:db8::6]/system"
    assert plan.stream_uri == "tcp://[2001:db8::6]"


def test_request_options_become_flags_and_parameters() -> None:
    request = _request(
        max_downtime_ms=120,
        bandwidth_mib_s=500,
        parallel_connections=4,
        auto_converge=False,
        postcopy=True,
        storage="copy",
    )
    plan = TlsTransport().plan(H1, H2, request)
    assert plan.flags == COMMON | {F.TLS, F.PARALLEL, F.POSTCOPY, F.NON_SHARED_DISK}
    assert (plan.max_downtime_ms, plan.bandwidth_mib_s, plan.parallel_connections) == (120, 500, 4)
    assert plan.auto_converge_initial is None
    uri, params, flags = _migrate.libvirt_call(plan)
    assert uri == "qemu+tls://198.18.0.2/system"
    assert params == {
        libvirt.VIR_MIGRATE_PARAM_URI: "tcp://198.18.0.2",
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 500,
        libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4,
    }
    wanted = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
        | libvirt.VIR_MIGRATE_TLS
        | libvirt.VIR_MIGRATE_PARALLEL
        | libvirt.VIR_MIGRATE_POSTCOPY
        | libvirt.VIR_MIGRATE_NON_SHARED_DISK
    )
    assert flags == wanted


class TwoStreams(TlsTransport):
    default_parallel_connections = 2


def test_corrals_tuning_for_tls() -> None:
    """A tuned auto-converge; multifd when asked (or when a transport defaults to it), one
    stream with post-copy or XBZRLE (QEMU combines neither with multifd)."""
    _uri, params, flags = _migrate.libvirt_call(TlsTransport().plan(H1, H2, _request()))
    assert flags & libvirt.VIR_MIGRATE_AUTO_CONVERGE
    assert params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] > 20  # QEMU's default
    assert libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT in params
    assert not flags & libvirt.VIR_MIGRATE_PARALLEL
    assert TwoStreams().plan(H1, H2, _request()).parallel_connections == 2
    for one_stream in ({"parallel_connections": 1}, {"postcopy": True}, {"xbzrle": True}):
        plan = TwoStreams().plan(H1, H2, _request(**one_stream))
        assert F.PARALLEL not in plan.flags and plan.parallel_connections is None, one_stream
    xbzrle = TlsTransport().plan(H1, H2, _request(xbzrle=True))
    _uri, params, flags = _migrate.libvirt_call(xbzrle)
    assert flags & libvirt.VIR_MIGRATE_COMPRESSED
    assert params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] == "xbzrle"
    assert params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE] == 64 * 2**20
    # Asked for both: the connections win, XBZRLE is dropped.
    both = TlsTransport().plan(H1, H2, _request(xbzrle=True, parallel_connections=4))
    assert F.COMPRESSED not in both.flags and both.xbzrle_cache_bytes is None
    # Other transports send one stream unless asked.
    assert InsecureTransport().plan(H1, H2, _request()).parallel_connections is None


def test_the_xbzrle_cache_fits_the_guest() -> None:
    plan = TlsTransport().plan(H1, H2, _request(xbzrle=True))
    assert fit_plan(plan, 1024).xbzrle_cache_bytes == 64 * 2**20
    assert fit_plan(plan, 256).xbzrle_cache_bytes == 64 * 2**20
    assert fit_plan(plan, 200).xbzrle_cache_bytes == 32 * 2**20  # a power of two <= 50 MiB
    assert fit_plan(plan, 2).xbzrle_cache_bytes == 2**20
    plain = TlsTransport().plan(H1, H2, _request())
    assert fit_plan(plain, 1024) is plain


def test_insecure_sends_the_stream_without_tls_but_talks_tls_between_daemons() -> None:
    plan = InsecureTransport().plan(H1, H2, _request(transport="insecure"))
    assert F.TLS not in plan.flags and F.TUNNELLED not in plan.flags
    assert plan.destination_uri.startswith("qemu+tls://")
    assert plan.stream_uri == "tcp://198.18.0.2"
    assert not InsecureTransport.encrypted


def test_ssh_tunnels_over_qemu_ssh_with_the_recorded_user_and_port() -> None:
    transport = SshTransport({"command": "/opt/ssh wrapper", "keyfile": "/etc/k"})
    plan = transport.plan(H1, H2, _request(transport="ssh", auto_converge=False))
    assert plan.destination_uri == (
        "qemu+ssh://root@198.18.0.2:2222/system?no_tty=1&command=%2Fopt%2Fssh+wrapper"
        "&keyfile=%2Fetc%2Fk"
    )
    assert plan.stream_uri is None
    assert plan.flags == COMMON | {F.TUNNELLED}
    assert SshTransport().plan(H2, H1, _request()).destination_uri == (
        "qemu+ssh://root@198.18.0.1/system?no_tty=1"
    )


def test_ssh_refuses_what_libvirt_cannot_tunnel() -> None:
    problems = SshTransport().check(
        H1, H2, _request(parallel_connections=2, postcopy=True, storage=StorageMode.COPY)
    )
    assert len(problems) == 3
    assert "multifd" in problems[0] and "post-copy" in problems[1] and "copy" in problems[2]


@pytest.mark.parametrize("transport", [TlsTransport(), InsecureTransport()])
def test_certificate_transports_need_enrolled_hosts(transport: MigrationTransport) -> None:
    assert transport.check(H1, H2, _request()) == []
    problems = transport.check(LOCAL, H2, _request())
    assert problems and "source host local was added by URI" in problems[0]
    assert "corral host enroll local" in problems[0]
    old = MigrationEndpoint("h1", "198.18.0.1", "qemu+tls://198.18.0.1/system", False)
    [problem] = transport.check(old, H2, _request())
    assert "no libvirt client certificate" in problem
    assert "corral host rotate-certs h1" in problem


def test_pyproject_registers_the_builtins_as_entry_points() -> None:
    """The built-ins go through the same door as any plugin."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert set(declared) == set(BUILTIN)
    for name, value in declared.items():
        loaded = EntryPoint(name, value, ENTRY_POINT_GROUP).load()
        assert loaded is BUILTIN[name]
        assert loaded.name == name


PLUGIN = '''
from corral.virt.transports import MigrationTransport, Route, host_in_uri


class WireGuardDemo(MigrationTransport):
    """A third party's transport: the stream goes to the destination's WireGuard address,
    still with QEMU TLS, checked against the enrolled address its certificate names."""

    name = "wg-demo"
    description = "over the wg0 mesh"
    encrypted = True

    def route(self, source, destination):
        mesh = self.options.get("prefix", "10.77.0.") + destination.address.rsplit(".", 1)[1]
        return Route(
            destination_uri=f"qemu+tls://{host_in_uri(destination.address)}/system",
            stream_uri=f"tcp://{mesh}",
            flags=frozenset({"tls"}),
            tls_destination=destination.address,
        )


class Misnamed(WireGuardDemo):
    name = "other"


def broken(options):
    raise RuntimeError("this plugin is broken")
'''


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party distribution on sys.path that registers transports the standard way
    (a ``*.dist-info`` with ``entry_points.txt``, as pip installs it)."""
    (tmp_path / "wg_demo.py").write_text(PLUGIN)
    info = tmp_path / "corral_wg_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: corral-wg-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [{ENTRY_POINT_GROUP}]
            wg-demo = wg_demo:WireGuardDemo
            other-name = wg_demo:Misnamed
            broken = wg_demo:broken
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("wg_demo", None)


def test_a_third_party_transport_is_found_through_its_entry_point(
    plugin_dist: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transports = load_transports({"wg-demo": {"prefix": "10.9.0."}})
    assert {"tls", "ssh", "insecure", "wg-demo"} <= set(transports)
    # A plugin whose name does not match its entry point, or that fails, is skipped, logged.
    assert "other" not in transports and "other-name" not in transports
    assert "broken" not in transports
    assert "broken" in caplog.text and "other-name" in caplog.text
    plan = transports["wg-demo"].plan(H1, H2, _request(transport="wg-demo"))
    assert plan.stream_uri == "tcp://10.9.0.2"
    assert plan.tls_destination == "198.18.0.2"
    _uri, params, flags = _migrate.libvirt_call(plan)
    assert params[libvirt.VIR_MIGRATE_PARAM_TLS_DESTINATION] == "198.18.0.2"
    assert flags & libvirt.VIR_MIGRATE_TLS


def test_builtins_load_directly_when_their_entry_points_are_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An editable install made before the entry points were declared still migrates."""
    monkeypatch.setattr("corral.virt.transports.entry_points", lambda group: [])
    transports = load_transports({"ssh": {"command": "/x/ssh"}})
    assert set(transports) == set(BUILTIN)
    assert "pip install -e" in caplog.text
    assert isinstance(transports["ssh"], SshTransport)
    assert transports["ssh"].options == {"command": "/x/ssh"}
