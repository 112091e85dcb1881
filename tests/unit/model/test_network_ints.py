"""VNI and VLAN are integers as JSON Schema counts them: 134.0 is one, "134" and true are not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corral.model.network import BridgeNetworkCreate, VxlanNetworkCreate


def test_an_integral_number_is_an_integer() -> None:
    vxlan = '{"name": "v", "kind": "vxlan", "vni": 134.0, "required": false}'
    assert VxlanNetworkCreate.model_validate_json(vxlan).vni == 134
    bridge = '{"name": "b", "kind": "bridge", "uplink": "lan", "vlan": 7.0, "required": false}'
    assert BridgeNetworkCreate.model_validate_json(bridge).vlan == 7


@pytest.mark.parametrize("vni", ['"134"', "true", "134.5", "0", "16777216"])
def test_strings_booleans_fractions_and_out_of_range_are_refused(vni: str) -> None:
    with pytest.raises(ValidationError):
        VxlanNetworkCreate.model_validate_json(
            f'{{"name": "v", "kind": "vxlan", "vni": {vni}, "required": false}}'
        )


def test_the_document_states_the_bounds() -> None:
    vlan = BridgeNetworkCreate.model_json_schema()["properties"]["vlan"]["anyOf"][0]
    assert vlan == {"type": "integer", "minimum": 1, "maximum": 4094}
