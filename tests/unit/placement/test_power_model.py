"""The linear power model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corral.model.placement import HostMode, PowerModel
from corral.placement import host_watts


def test_power_is_linear_from_idle_to_max() -> None:
    model = PowerModel()  # 100 W idle, 250 W at full load
    assert host_watts(model, HostMode.CONNECTED, 0.0) == 100.0
    assert host_watts(model, HostMode.CONNECTED, 0.4) == 160.0
    assert host_watts(model, HostMode.CONNECTED, 1.0) == 250.0


def test_estimates_beyond_full_load_are_clipped() -> None:
    assert host_watts(PowerModel(), HostMode.CONNECTED, 1.7) == 250.0


def test_a_host_in_standby_draws_its_standby_power_and_maintenance_counts_as_on() -> None:
    model = PowerModel(idle_w=180, max_w=420, standby_w=12)
    assert host_watts(model, HostMode.STANDBY, 0.9) == 12.0
    assert host_watts(model, HostMode.MAINTENANCE, 0.5) == 300.0


def test_the_model_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="standby_w <= idle_w <= max_w"):
        PowerModel(idle_w=300, max_w=250)
