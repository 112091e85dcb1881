"""Settings: ``corral.toml`` plus ``CORRAL_*`` environment variables (the environment wins).

Defaults work on one machine: SQLite under the data directory, the local ``qemu:///system`` host,
listening on 127.0.0.1:8080 only.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from corral.model.vm import Accelerator


def _default_data_dir() -> Path:
    return Path(os.environ.get("CORRAL_DATA_DIR", "/var/lib/corral"))


def _config_file() -> Path:
    return Path(os.environ.get("CORRAL_CONFIG", "/etc/corral/corral.toml"))


class Settings(BaseSettings):
    """Everything an administrator can configure. See README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="CORRAL_", extra="forbid")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///DATA_DIR/corral.db"
    )
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=1, le=65535)
    tls_cert: Path | None = Field(
        default=None, description="HTTPS certificate (chain) file; with tls_key, always HTTPS"
    )
    tls_key: Path | None = Field(default=None, description="the private key of tls_cert")
    public_names: list[str] = Field(
        default_factory=list,
        description="the DNS names or addresses clients reach Corral by, besides loopback and "
        "the listen address: accepted in the Host header and named in Corral's own HTTPS "
        "certificate",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; from anyone else they are ignored",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="the largest request body Corral reads (image uploads excepted: they are "
        "streamed to the pool); a larger one is refused with 413",
    )
    local_host_name: str = "local"
    local_host_uri: str = "qemu:///system"
    local_host_accelerator: Accelerator | None = None
    allow_test_hosts: bool = Field(
        default=False,
        description="hosts may be added with libvirt's test driver (test:///default): for "
        "simulations and tests, never in production",
    )
    pool_dir: str = "/var/lib/libvirt/corral/images"
    host_path_roots: list[str] = Field(
        default_factory=list,
        description="directories whose files admins may name by absolute path (disk imports, "
        "kernels, initrds, CD-ROMs) besides Corral's own pool; non-admins never "
        "name host paths (env: JSON list)",
    )
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    allowed_origins: list[str] = Field(default_factory=list)
    console_handshake_timeout_s: float = Field(
        default=10,
        gt=0,
        le=60,
        description="a browser's VNC console that has not finished the RFB handshake this long "
        "after it connected is closed (Corral connects to the VM's screen only after it)",
    )
    console_max_per_user: int = Field(
        default=8, ge=1, description="consoles (VNC and serial, half-open ones too) per user"
    )
    console_max_per_vm: int = Field(
        default=16,
        ge=1,
        le=28,
        description="consoles of one kind per VM (below QEMU's 32 VNC clients: typing, "
        "screenshots and screen matching keep theirs)",
    )
    console_writer_reserve: int = Field(
        default=4,
        ge=0,
        description="of console_max_per_vm, the consoles (and tickets) only operators and admins "
        "may take: view-only users never fill a VM's last ones",
    )
    console_max_tickets_per_user: int = Field(
        default=8, ge=1, description="console tickets a user may hold unused at a time"
    )
    event_streams_max_per_user: int = Field(
        default=10, ge=1, description="event streams (`GET /api/v1/events`, one per page) per user"
    )
    node_modules_dir: Path | None = Field(
        default=None,
        description="where `npm ci` put the front-end packages; default: the checkout's",
    )
    log_level: str = "info"
    metrics_public: bool = Field(
        default=False,
        description="/metrics answers without a token (default: a viewer's token or session)",
    )
    metrics_interval_s: float = Field(
        default=15, gt=0, description="how often the values /metrics serves are refreshed"
    )
    session_idle_minutes: float = Field(
        default=30, gt=0, description="a browser session ends after this long without a request"
    )
    migration_transports: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="options of each migration transport, by name (TOML tables "
        "[migration_transports.ssh] command = …; env: JSON)",
    )
    session_max_hours: float = Field(
        default=12, gt=0, description="a browser session ends this long after login, used or not"
    )
    api_login_token_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="an API token a login makes (POST /auth/login, `corral login`) expires this "
        "many days later unless the login asks for another number; 0: never",
    )
    power_sample_interval_s: float = Field(
        default=10, gt=0, description="how often every connected host's utilisation is sampled"
    )
    power_cpu_source: Literal["node", "domains"] = Field(
        default="node",
        description="a host's CPU utilisation from the node's CPU statistics (node) or from the "
        "sum of its VMs' CPU time (domains: for hosts that share a kernel, e.g. containers or "
        "Corral's test bed, whose node statistics are the whole machine's)",
    )
    power_wake_timeout_s: float = Field(
        default=600, gt=0, description="how long a woken host may take to answer libvirt"
    )
    power_off_timeout_s: float = Field(
        default=120, gt=0, description="how long a host may take to go down after power-off"
    )
    ha_suspect_after_s: float = Field(
        default=5.0,
        gt=0,
        description="high availability: how long a host with HA VMs may stop answering libvirt "
        "before Corral fences it (switches it off through its BMC) and restarts them elsewhere",
    )
    ha_interval_s: float = Field(default=1.0, gt=0, description="the HA monitor's pass interval")
    ha_self_fence_after_s: float = Field(
        default=20.0,
        ge=3,
        le=600,
        description="a host whose storage heartbeat could not be written this long kills its "
        "own QEMUs; Corral restarts its HA VMs once the heartbeat has been still this long "
        "plus 5 s",
    )

    @model_validator(mode="after")
    def _reserve_below_cap(self) -> Settings:
        if self.console_writer_reserve >= self.console_max_per_vm:
            raise ValueError(
                "console_writer_reserve must be below console_max_per_vm (or viewers could "
                "open no console at all)"
            )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        # An address or a network, nothing else: uvicorn's "*" (trust everyone) would hand
        # every client the power to choose the address the login throttle counts.
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network (CIDR)"
                ) from None
        return networks

    @property
    def simulated_hosts_dir(self) -> Path:
        """Where simulated hosts' node descriptions must be (``test:///PATH.xml`` hosts,
        with ``allow_test_hosts``; ``corral testbed simulate`` writes them)."""
        return self.data_dir / "simulated-hosts"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'corral.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
