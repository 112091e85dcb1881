"""What a host can run, per guest architecture: parsed from libvirt's capabilities and domain
capabilities XML (pure functions on the XML, plus the two calls that fetch it).

The capabilities XML names, for each architecture with an emulator, its machine types (with
their vCPU limit) and the domain types (``qemu``: TCG, ``kvm``). The domain capabilities of one
(architecture, accelerator, machine) add the exact vCPU limit, the CPU modes and models, the
host-model CPU's features (what nesting needs) and the firmware images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libvirt
from lxml import etree

from corral.model.arch import CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH, CPU_MAX
from corral.model.host import GuestArchInfo, MachineInfo
from corral.model.vm import Accelerator
from corral.virt.domain_xml.archdefaults import nested_feature, profile

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
_DOMAIN_TYPES = {"kvm": Accelerator.KVM, "qemu": Accelerator.TCG}
_MODES = {"host-model": CPU_HOST_MODEL, "host-passthrough": CPU_HOST_PASSTHROUGH,
          "maximum": CPU_MAX}  # fmt: skip


@dataclass(frozen=True)
class GuestArch:
    """One ``<guest>`` of the capabilities XML (hvm guests only)."""

    arch: str
    emulator: str
    machines: list[MachineInfo]
    #: Accelerators libvirt offers for it; empty for drivers without QEMU (the test driver).
    accelerators: list[Accelerator]

    def machine(self, name: str) -> MachineInfo | None:
        return next((m for m in self.machines if name in (m.name, m.canonical)), None)


@dataclass(frozen=True)
class HostCpu:
    """The host's own CPU as the capabilities XML describes it."""

    arch: str
    vendor: str
    features: frozenset[str]


@dataclass(frozen=True)
class GuestCatalog:
    """Everything the capabilities XML says about guests; read once per connection."""

    host_cpu: HostCpu
    guests: dict[str, GuestArch] = field(default_factory=dict)
    #: The driver's own vCPU limit (``getMaxVcpus``): what counts where nothing better is known.
    max_vcpus: int | None = None


@dataclass(frozen=True)
class DomainCaps:
    """The domain capabilities of one (architecture, accelerator, machine)."""

    machine: str
    max_vcpus: int | None
    #: The modes among host-model, host-passthrough, max that libvirt supports here.
    cpu_modes: list[str]
    #: Named CPU models libvirt does not call unusable here.
    cpu_models: list[str]
    #: Features the host-model CPU requires (what KVM can give a guest).
    host_model_features: frozenset[str]
    host_model_disabled: frozenset[str]
    #: Firmware images (UEFI and the like) libvirt found for it.
    firmware: list[str]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def parse_catalog(caps_xml: str) -> GuestCatalog:
    caps = etree.fromstring(caps_xml.encode(), _PARSER)
    cpu = HostCpu(
        arch=caps.findtext("host/cpu/arch") or "",
        vendor=caps.findtext("host/cpu/vendor") or "",
        features=frozenset(f.get("name", "") for f in caps.iterfind("host/cpu/feature")),
    )
    guests: dict[str, GuestArch] = {}
    for guest in caps.iterfind("guest"):
        arch = guest.find("arch")
        if guest.findtext("os_type") != "hvm" or arch is None or arch.get("name") in guests:
            continue
        machines = [
            MachineInfo(
                name=(m.text or "").strip(),
                canonical=m.get("canonical"),
                max_vcpus=_int(m.get("maxCpus")),
            )
            for m in arch.iterfind("machine")
            if (m.text or "").strip()
        ]
        accelerators = sorted(
            {
                _DOMAIN_TYPES[d.get("type", "")]
                for d in arch.iterfind("domain")
                if d.get("type") in _DOMAIN_TYPES
            }
        )
        name = arch.get("name", "")
        guests[name] = GuestArch(name, arch.findtext("emulator") or "", machines, accelerators)
    return GuestCatalog(cpu, guests)


def parse_domain_caps(xml: str) -> DomainCaps:
    root = etree.fromstring(xml.encode(), _PARSER)
    cpu = root.find("cpu")
    modes: list[str] = []
    models: list[str] = []
    required: set[str] = set()
    disabled: set[str] = set()
    if cpu is not None:
        for mode in cpu.iterfind("mode"):
            name = mode.get("name", "")
            if mode.get("supported") != "yes":
                continue
            if name in _MODES:
                modes.append(_MODES[name])
            if name == "custom":
                models = [
                    (m.text or "").strip()
                    for m in mode.iterfind("model")
                    if m.get("usable") != "no" and (m.text or "").strip()
                ]
            if name == "host-model":
                for feature in mode.iterfind("feature"):
                    target = required if feature.get("policy") == "require" else disabled
                    target.add(feature.get("name", ""))
    vcpu = root.find("vcpu")
    return DomainCaps(
        machine=root.findtext("machine") or "",
        max_vcpus=_int(vcpu.get("max")) if vcpu is not None else None,
        cpu_modes=sorted(modes, key=[CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH, CPU_MAX].index),
        cpu_models=sorted(set(models) - {CPU_MAX}, key=str.lower),
        host_model_features=frozenset(required),
        host_model_disabled=frozenset(disabled),
        firmware=[(v.text or "").strip() for v in root.iterfind("os/loader/value")],
    )


def read_catalog(conn: libvirt.virConnect) -> GuestCatalog:
    catalog = parse_catalog(conn.getCapabilities())
    try:
        limit: int | None = int(conn.getMaxVcpus(None))
    except libvirt.libvirtError:
        limit = None
    return GuestCatalog(catalog.host_cpu, catalog.guests, limit)


def read_domain_caps(
    conn: libvirt.virConnect, arch: str, accelerator: Accelerator, machine: str | None
) -> DomainCaps | None:
    """None when libvirt cannot say (the test driver; an accelerator the emulator lacks)."""
    virttype = "kvm" if accelerator is Accelerator.KVM else "qemu"
    try:
        xml = conn.getDomainCapabilities(None, arch, machine, virttype, 0)
    except libvirt.libvirtError as err:
        if err.get_error_code() in (
            libvirt.VIR_ERR_NO_SUPPORT,
            libvirt.VIR_ERR_INVALID_ARG,
            libvirt.VIR_ERR_OPERATION_INVALID,
            libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        ):
            return None
        raise
    return parse_domain_caps(xml)


def nesting_possible(
    arch: str, accelerator: Accelerator, host_cpu: HostCpu, caps: DomainCaps | None
) -> tuple[str | None, str]:
    """(the feature to require, "") when ``arch`` guests can nest under ``accelerator``, else
    (None, why not). Under KVM the host-model CPU shows what KVM passes on: the feature is
    there only when the host's kvm module allows nesting."""
    feature = nested_feature(arch, accelerator, host_cpu.vendor)
    if feature is None:
        if not profile(arch).nested_features:
            return (
                None,
                f"Corral offers nested virtualization for x86_64 and s390x guests, not {arch}",
            )
        if accelerator is Accelerator.TCG:
            return None, (
                f"QEMU's TCG cannot emulate what nested {arch} guests need (on s390x: SIE); "
                "run the VM under KVM on a host of its architecture"
            )
        return None, f"the host's CPU ({host_cpu.vendor or 'unknown vendor'}) has no vmx or svm"
    if accelerator is Accelerator.TCG:
        return feature, ""
    offered = caps is not None and feature in caps.host_model_features
    offered = offered or (
        host_cpu.arch == arch
        and feature in host_cpu.features
        and (caps is None or feature not in caps.host_model_disabled)
    )
    if offered:
        return feature, ""
    module = {"vmx": "kvm_intel", "svm": "kvm_amd", "sie": "kvm"}.get(feature, "kvm")
    return None, (
        f"KVM on this host does not pass {feature} on to guests: load {module} with nested=1 "
        f"(echo 'options {module} nested=1' > /etc/modprobe.d/nested.conf, then reload it), or "
        "use accelerator tcg"
    )


def guest_info(
    guest: GuestArch, catalog: GuestCatalog, caps: dict[Accelerator, DomainCaps | None]
) -> GuestArchInfo:
    """What ``corral host show`` lists for one architecture."""
    arch = profile(guest.arch)
    default = default_machine(guest)
    order = (Accelerator.KVM, Accelerator.TCG)
    best = next((c for c in (caps.get(a) for a in order) if c is not None), None)
    machine = guest.machine(default) if default else None
    max_vcpus = best.max_vcpus if best is not None else None
    if max_vcpus is None and machine is not None:
        max_vcpus = machine.max_vcpus
    if max_vcpus is None:
        max_vcpus = catalog.max_vcpus
    models: list[str] = []
    for found in caps.values():
        if found is not None:
            models += [m for m in found.cpu_modes if m not in models]
    for found in caps.values():
        if found is not None:
            models += [m for m in found.cpu_models if m not in models]
    nested = [
        accel
        for accel, found in sorted(caps.items())
        if nesting_possible(guest.arch, accel, catalog.host_cpu, found)[0] is not None
    ]
    return GuestArchInfo(
        arch=guest.arch,
        emulator=guest.emulator,
        accelerators=guest.accelerators,
        default_machine=default,
        max_vcpus=max_vcpus,
        console=arch.console,
        machines=guest.machines,
        cpu_models=models,
        nested=nested,
    )


def default_machine(guest: GuestArch) -> str | None:
    """The machine type a VM gets when it names none: the architecture's default if the host
    offers it, else the first the capabilities list (libvirt's own default)."""
    wanted = profile(guest.arch).machine
    if wanted is not None and guest.machine(wanted) is not None:
        return wanted
    return guest.machines[0].name if guest.machines else None
