"""Hosts: the libvirt daemons Corral manages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from corral.model.common import Name
from corral.model.vm import Accelerator


class HostCapabilities(BaseModel):
    """What libvirt reports about a host (from ``getCapabilities``/``getInfo``/domain caps)."""

    hostname: str
    arch: str
    cpus: int
    memory_mib: int
    free_memory_mib: int
    accelerators: list[Accelerator]
    libvirt_version: str
    qemu_version: str | None = None


class HostInfo(BaseModel):
    name: str
    uri: str
    connected: bool
    accelerator: Accelerator | None = Field(
        default=None, description="forced accelerator for this host; None = best available"
    )
    capabilities: HostCapabilities | None = None
    last_error: str | None = None


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: str = Field(min_length=1, max_length=1024)
    accelerator: Accelerator | None = None
