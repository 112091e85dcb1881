"""Prerequisites on the hosts: the probe's exit status read back, and the transports listing's
verdict from what each host pair showed."""

from __future__ import annotations

from corral.model.migration import TransportInfo
from corral.services.migrations.readiness import Readiness, parse_exit
from corral.services.migrations.transport_list import summary
from corral.virt.transports import CommandResult, MigrationEndpoint

H1 = MigrationEndpoint("h1", "198.18.0.1", "qemu+tls://198.18.0.1/system")
H2 = MigrationEndpoint("h2", "198.18.0.2", "qemu+tls://198.18.0.2/system")
H3 = MigrationEndpoint("h3", "198.18.0.3", "qemu+tls://198.18.0.3/system")
SSH = TransportInfo(name="ssh", description="", encrypted=True, allowed=True)


def test_the_probed_commands_exit_status_is_read_from_the_last_line() -> None:
    said = "Host key verification failed.\ncorral-exit-status=255\n"
    assert parse_exit(said) == CommandResult(255, "Host key verification failed.\n")
    assert parse_exit("no newline first corral-exit-status=0") == CommandResult(
        0, "no newline first "
    )
    # A far end that prints the marker itself cannot hide the real (last) one.
    assert parse_exit("corral-exit-status=0\ncorral-exit-status=255\n").exit_status == 255
    assert parse_exit("cut short").exit_status == -1


def test_a_failing_pair_makes_a_transport_unusable_and_is_named() -> None:
    found = [
        ((H1, H2), Readiness(problems=("host key verification failed for h2",))),
        ((H2, H1), Readiness()),
        ((H1, H3), Readiness(unknown="not checked on h1: no SSH access")),
    ]
    verdict = summary(SSH, found)
    assert not verdict.usable
    assert verdict.reason == "h1 → h2: host key verification failed for h2"


def test_unchecked_pairs_leave_a_transport_usable_and_say_so() -> None:
    unknown = Readiness(unknown="not checked on h1: no SSH access")
    found = [((H1, H3), unknown), ((H3, H1), Readiness())]
    verdict = summary(SSH, found)
    assert verdict.usable and verdict.reason == "h1 → h3: not checked on h1: no SSH access"
    assert summary(SSH, []).usable and summary(SSH, []).reason is None
    one = summary(SSH, [((H1, H2), Readiness(problems=("x",)))])
    assert (one.usable, one.reason) == (False, "x")  # one pair asked for: no pair prefix
