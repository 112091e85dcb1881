"""``net.apply``'s arguments: what the agent accepts, and the sentences it refuses with."""

from __future__ import annotations

from typing import Any

import pytest

from corral.hostagent.netspec import apply_request
from corral.hostagent.protocol import AgentError


def _args(*bridges: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"change_id": "c1", "bridges": list(bridges), **extra}


def test_a_full_request_is_read() -> None:
    vxlan = {"vni": 7, "local": "198.18.0.1", "peers": ["198.18.0.3", "198.18.0.2", "198.18.0.1"]}
    request = apply_request(
        _args({"bridge": "crlb-1a2b3c4d", "vxlan": vxlan, "uplink": "ens4", "mtu": 1400})
    )
    assert request.rollback_after_s == 20
    [spec] = request.bridges
    assert spec.vxlan is not None and spec.vxlan.peers == ("198.18.0.2", "198.18.0.3")
    assert spec.vxlan.dstport == 4789
    assert (spec.vxlan_dev, spec.vlan_dev, spec.port) == ("crlv-1a2b3c4d", "crlq-1a2b3c4d", "ens4")
    tagged = apply_request(_args({"bridge": "crlb-2", "uplink": "ens4", "vlan": 10}))
    assert tagged.bridges[0].port == "crlq-2"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({"bridges": []}, "change_id None is not a valid name"),
        (_args(rollback_after_s=0), "rollback_after_s must be a whole number from 1 to 600"),
        ({"change_id": "c", "bridges": {}}, "bridges must be the list"),
        (_args({"bridge": "br0"}), "bridges[0].bridge 'br0' is not a valid name"),
        (_args({"bridge": "crlb-12345678901"}), "is not a valid name"),
        (_args({"bridge": "crlb-1", "uplink": "crlb-2"}), "cannot be an uplink"),
        (_args({"bridge": "crlb-1", "vlan": 5}), "a VLAN needs an uplink NIC"),
        (_args({"bridge": "crlb-1", "mtu": 10}), "mtu must be a whole number from 68"),
        (_args({"bridge": "crlb-1", "stp": True}), "unknown fields: stp"),
        (
            _args({"bridge": "crlb-1", "vxlan": {"vni": 0, "local": "10.0.0.1"}}),
            "vxlan.vni must be a whole number from 1 to 16777215",
        ),
        (
            _args({"bridge": "crlb-1", "vxlan": {"vni": 1, "local": "h1"}}),
            "vxlan.local must be an IP address",
        ),
        (_args({"bridge": "crlb-1"}, {"bridge": "crlb-1"}), "bridge crlb-1 is asked for by both"),
        (
            _args({"bridge": "crlb-1", "uplink": "ens4"}, {"bridge": "crlb-2", "uplink": "ens4"}),
            "uplink ens4 VLAN untagged is asked for by both crlb-1 and crlb-2",
        ),
        (
            _args(
                {"bridge": "crlb-1", "uplink": "ens4"},
                {"bridge": "crlb-2", "uplink": "ens4", "vlan": 3},
            ),
            "ens4 is enslaved untagged to crlb-1: it cannot also carry VLAN 3",
        ),
    ],
)
def test_bad_requests_are_refused_in_words(args: dict[str, Any], said: str) -> None:
    with pytest.raises(AgentError) as caught:
        apply_request(args)
    assert said in str(caught.value)
