"""``corral host power NAME …``: a host's power driver and power model (admins), and the
drivers built from them for the other use cases.

Secrets (the BMC password) are taken out of the settings before they are stored and sealed
apart (``SecretBox``); ``HostPowerInfo`` tells only whether one is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from corral import store
from corral.errors import Conflict, CorralError
from corral.model.auth import Role
from corral.model.placement import PowerModel
from corral.model.power import (
    HostPowerInfo,
    HostPowerSettings,
    IpmiDriver,
    PowerDriverKind,
)
from corral.services._db import Db
from corral.services.cluster import ClusterSettingsService
from corral.services.hosts import HostService
from corral.services.power.drivers import PowerDriver, build_driver, parse_config
from corral.services.power.secrets import SecretBox
from corral.services.principal import Principal

#: Settings fields that are secrets: never stored in ``settings``, never returned.
SECRET_FIELDS = ("password",)


class HostPowerConfig:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        cluster: ClusterSettingsService,
        secrets: SecretBox,
        known_hosts: Path,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._cluster = cluster
        self._secrets = secrets
        self._known_hosts = known_hosts

    async def load(self) -> None:
        """Tell the host registry which hosts have which driver (for listings)."""
        for name, stored in (await self._db(store.all_power)).items():
            if stored.driver:
                self._hosts.power_drivers[name] = stored.driver

    async def info(self, name: str) -> HostPowerInfo:
        self._hosts.get(name)
        stored = await self._db(lambda s: store.get_power(s, name))
        default = (await self._cluster.get()).power_model()
        try:
            driver = await self.driver(name) if stored.driver else None
        except CorralError:  # unusable (its secret cannot be decrypted…): shown as such
            driver = None
        return HostPowerInfo(
            host=name,
            driver=PowerDriverKind(stored.driver) if stored.driver else None,
            settings={k: v for k, v in stored.settings.items() if k not in SECRET_FIELDS},
            password_set=stored.secret is not None,
            can_power_on=driver.can_power_on if driver else False,
            can_power_off=driver.can_power_off if driver else False,
            model=PowerModel.model_validate(stored.model) if stored.model else default,
            model_is_default=stored.model is None,
        )

    async def models(self) -> dict[str, PowerModel]:
        """Every host's power model in force."""
        default = (await self._cluster.get()).power_model()
        stored = await self._db(store.all_power)
        return {
            h.name: (
                PowerModel.model_validate(stored[h.name].model)
                if h.name in stored and stored[h.name].model
                else default
            )
            for h in self._hosts.all()
        }

    async def put(
        self, principal: Principal, name: str, request: HostPowerSettings
    ) -> HostPowerInfo:
        principal.require(Role.ADMIN)
        self._hosts.get(name)
        previous = await self._db(lambda s: store.get_power(s, name))
        driver = request.driver
        if driver is None and previous.driver is not None and self._hosts.in_standby(name):
            raise Conflict(
                f"host {name} is in standby: wake it (`corral host power-on {name}`) before "
                "removing its driver, or Corral could not wake it again"
            )
        settings: dict[str, Any] = {}
        secret: str | None = None
        if driver is not None:
            settings = driver.model_dump(mode="json", exclude=set(SECRET_FIELDS))
            if isinstance(driver, IpmiDriver):
                secret = await self._ipmi_secret(name, driver, previous)
            # The driver must be buildable now (SSH access on record…): a 409 before storing.
            config = parse_config({**settings, **self._open(secret)})
            build_driver(config, self._hosts.get(name), await self._ssh(name), self._known_hosts)
        model = None
        if request.model is not None:
            try:
                model = PowerModel.model_validate(request.model.model_dump()).model_dump()
            except ValidationError as exc:
                why = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise Conflict(f"model: {why}") from None

        kind = driver.driver if driver else None
        await self._db(
            lambda s: store.put_power(
                s, name, driver=kind, settings=settings, secret=secret, model=model
            )
        )
        if kind:
            self._hosts.power_drivers[name] = kind
        else:
            self._hosts.power_drivers.pop(name, None)
        return await self.info(name)

    async def _ipmi_secret(self, name: str, driver: IpmiDriver, previous: store.StoredPower) -> str:
        if driver.password is not None:
            return self._secrets.seal({"password": driver.password})
        if previous.driver == "ipmi" and previous.secret is not None:
            return previous.secret
        raise Conflict(
            f"host {name} has no BMC password on record: give one (--password-file in the CLI)"
        )

    def _open(self, secret: str | None) -> dict[str, str]:
        return self._secrets.open(secret) if secret else {}

    async def _ssh(self, name: str) -> Any:
        row = await self._db(lambda s: store.get_host(s, name))
        return store.host_ssh(row)

    async def driver(self, name: str) -> PowerDriver | None:
        """The host's driver, secrets decrypted for this use; None without one."""
        stored = await self._db(lambda s: store.get_power(s, name))
        if stored.driver is None:
            return None
        config = parse_config({**stored.settings, **self._open(stored.secret)})
        return build_driver(config, self._hosts.get(name), await self._ssh(name), self._known_hosts)
