"""Guest architectures, machine types and virtual CPUs: what a VM may ask for.

``Arch`` lists every architecture name libvirt knows; whether a host can run one is the host's
business (its libvirt capabilities name an emulator for it or not), so an architecture this
enumeration has but a host lacks is refused by the host (409), naming the package to install.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Arch(StrEnum):
    """libvirt's architecture names (``virArch``)."""

    AARCH64 = "aarch64"
    ALPHA = "alpha"
    ARMV6L = "armv6l"
    ARMV7B = "armv7b"
    ARMV7L = "armv7l"
    CRIS = "cris"
    I686 = "i686"
    LOONGARCH64 = "loongarch64"
    M68K = "m68k"
    MICROBLAZE = "microblaze"
    MICROBLAZEEL = "microblazeel"
    MIPS = "mips"
    MIPSEL = "mipsel"
    MIPS64 = "mips64"
    MIPS64EL = "mips64el"
    OPENRISC = "openrisc"
    PARISC = "parisc"
    PARISC64 = "parisc64"
    PPC = "ppc"
    PPCLE = "ppcle"
    PPC64 = "ppc64"
    PPC64LE = "ppc64le"
    PPCEMB = "ppcemb"
    RISCV32 = "riscv32"
    RISCV64 = "riscv64"
    S390 = "s390"
    S390X = "s390x"
    SH4 = "sh4"
    SH4EB = "sh4eb"
    SPARC = "sparc"
    SPARC64 = "sparc64"
    UNICORE32 = "unicore32"
    X86_64 = "x86_64"
    XTENSA = "xtensa"
    XTENSAEB = "xtensaeb"


#: QEMU machine type names (``q35``, ``pc-i440fx-7.2``, ``virt``, ``s390-ccw-virtio``).
MACHINE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MachineType = Annotated[str, StringConstraints(pattern=MACHINE_PATTERN, max_length=64)]

#: ``host-model``, ``host-passthrough``, ``max`` or a QEMU CPU model name (``Skylake-Server``,
#: ``cortex-a57``, ``z14.2-base``).
CPU_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
CpuModel = Annotated[str, StringConstraints(pattern=CPU_MODEL_PATTERN, max_length=64)]

#: The CPU choices that are modes rather than model names.
CPU_HOST_MODEL = "host-model"
CPU_HOST_PASSTHROUGH = "host-passthrough"
CPU_MAX = "max"
CPU_MODES = (CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH, CPU_MAX)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CpuTopology(_Strict):
    """How the vCPUs are laid out; sockets x cores x threads is the VM's maximum vCPU count."""

    sockets: int = Field(ge=1, le=512)
    cores: int = Field(ge=1, le=512)
    threads: int = Field(ge=1, le=8)

    @property
    def total(self) -> int:
        return self.sockets * self.cores * self.threads

    def __str__(self) -> str:
        return f"{self.sockets} sockets x {self.cores} cores x {self.threads} threads"


class CpuSpec(_Strict):
    """The virtual CPU a VM gets."""

    model: CpuModel | None = Field(
        default=None,
        description="host-model (the host's CPU as far as it can be migrated; KVM), "
        "host-passthrough (exactly the host's CPU; KVM), max (every feature the accelerator can "
        "give: the richest CPU under TCG), or a CPU model the host offers for the architecture "
        "(`corral host show`). Default: host-model under KVM (host-passthrough on aarch64), "
        "QEMU's default under TCG (cortex-a57 on aarch64)",
    )
    topology: CpuTopology | None = Field(
        default=None,
        description="sockets x cores x threads; the product must equal max_vcpus (vcpus when "
        "there is no max_vcpus)",
    )
    nested: bool = Field(
        default=False,
        strict=True,
        description="let the guest run VMs itself: vmx or svm on x86, sie on s390x. Refused "
        "where the host cannot give it",
    )


def _topology_rule(total: int, vcpus: int, what: str) -> str:
    return (
        f"cpu.topology gives {total} vCPUs but {what} is {vcpus}: make sockets x cores x "
        f"threads equal {vcpus}"
    )


class CpuInfo(BaseModel):
    """The virtual CPU as libvirt has it."""

    model: str | None = Field(
        default=None, description="host-model, host-passthrough, max, a model name, or null"
    )
    topology: CpuTopology | None = None
    nested: bool = False


def check_sizing(
    vcpus: int | None,
    max_vcpus: int | None,
    memory_mib: int | None,
    max_memory_mib: int | None,
    topology: CpuTopology | None = None,
) -> None:
    """The rules between sizes a request gives; ValueError says what to change."""
    if vcpus is not None and max_vcpus is not None and vcpus > max_vcpus:
        raise ValueError(f"vcpus ({vcpus}) is above max_vcpus ({max_vcpus}): raise max_vcpus")
    if memory_mib is not None and max_memory_mib is not None and memory_mib > max_memory_mib:
        raise ValueError(
            f"memory_mib ({memory_mib}) is above max_memory_mib ({max_memory_mib}): raise "
            "max_memory_mib"
        )
    if topology is not None:
        if max_vcpus is not None and topology.total != max_vcpus:
            raise ValueError(_topology_rule(topology.total, max_vcpus, "max_vcpus"))
        if max_vcpus is None and vcpus is not None and topology.total != vcpus:
            raise ValueError(_topology_rule(topology.total, vcpus, "vcpus"))
