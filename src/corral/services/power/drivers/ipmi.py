"""IPMI over LAN (RMCP+) with pyghmi: chassis power on, off and status from the host's BMC.

pyghmi is synchronous (its own I/O thread and sockets); every call runs in a worker thread
under a bound. Its exceptions carry the BMC's completion code in words ("Incorrect password
provided") or nothing at all (no answer): both become ``PowerDriverFailed`` naming the BMC,
never the password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pyghmi.exceptions import PyghmiException
from pyghmi.ipmi.command import Command

from corral.errors import OperationTimeout, PowerDriverFailed
from corral.model.power import PowerDriverKind, PowerState

log = logging.getLogger(__name__)
T = TypeVar("T")

#: pyghmi gives up on a silent BMC after about 5 s; this bounds everything else.
CALL_TIMEOUT_S = 30.0
_STATES = {"on": PowerState.ON, "off": PowerState.OFF}


class IpmiPower:
    kind = PowerDriverKind.IPMI
    can_power_on = True
    can_power_off = True

    def __init__(self, host: str, address: str, port: int, user: str, password: str) -> None:
        self.host = host
        self.address = address
        self.port = port
        self._user = user
        self._password = password

    def __repr__(self) -> str:  # never the password
        return f"IpmiPower({self.host!r}, {self.address}:{self.port}, user={self._user!r})"

    @property
    def _where(self) -> str:
        return f"the BMC of host {self.host} at {self.address}:{self.port}"

    def _session(self) -> Command:
        # Bytes, not str: pyghmi files a session being set up under the credentials as given
        # but removes it under their encoded form, so with str the logged-out session of the
        # previous call stays filed and the next call to the same BMC fails inside pyghmi
        # ("'<' not supported between instances of 'float' and 'NoneType").
        return Command(
            bmc=self.address,
            userid=self._user.encode(),
            password=self._password.encode(),
            port=self.port,
            keepalive=False,
        )

    async def _call(self, what: str, fn: Callable[[Command], T]) -> T:
        def job() -> T:
            command = self._session()
            try:
                return fn(command)
            finally:
                try:
                    command.ipmi_session.logout()
                except (PyghmiException, OSError, AttributeError) as exc:  # best effort
                    log.debug("IPMI logout from %s: %s", self._where, exc)

        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await asyncio.to_thread(job)
        except TimeoutError as exc:
            raise OperationTimeout(f"{what}: {self._where} did not answer in time") from exc
        except PyghmiException as exc:
            raise PowerDriverFailed(f"{what}: {self._where} {_explain(exc)}") from exc
        except OSError as exc:
            raise PowerDriverFailed(f"{what}: cannot reach {self._where}: {exc}") from exc

    async def power_on(self) -> None:
        await self._call(f"power on host {self.host}", lambda c: c.set_power("on"))

    async def power_off(self) -> None:
        await self._call(f"power off host {self.host}", lambda c: c.set_power("off"))

    async def status(self) -> PowerState:
        answer: dict[str, Any] = await self._call(
            f"read the power state of host {self.host}", lambda c: c.get_power()
        )
        return _STATES.get(str(answer.get("powerstate")), PowerState.UNKNOWN)


def _explain(exc: PyghmiException) -> str:
    text = str(exc.args[0]) if exc.args and exc.args[0] else ""
    if not text or text == "None":
        return "did not answer (timed out): check its address, port and network"
    if "password" in text.lower() or "unauthorized" in text.lower():
        return f"refused the login: {text}; check the user and password"
    return f"refused: {text}"
