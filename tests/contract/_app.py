"""The real app on libvirt's ``test:///default`` driver, with an admin the fuzzer logs in as."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from corral.api.app import create_app
from corral.config import Settings
from corral.model.auth import Role
from corral.services.runtime import Services

# A user name no generator will guess: failed logins the fuzzer sends for other names must not
# throttle the admin it works as.
ADMIN = "contract-fuzz-admin"
PASSWORD = "contract-fuzz-password-31f9c2"


@dataclass(frozen=True)
class ContractApp:
    app: FastAPI
    services: Services


def build(data_dir: Path) -> ContractApp:
    settings = Settings(
        data_dir=data_dir,
        local_host_name="test",
        local_host_uri="test:///default",
        pool_dir=str(data_dir / "pool"),
        reconcile_interval_s=3600,
    )
    services = Services(settings)
    services.auth.create_user_sync(ADMIN, PASSWORD, Role.ADMIN)
    return ContractApp(create_app(settings, services), services)
