"""``<vcpu>`` (how many) and ``<cpu>`` (which model the guest sees, its topology, features)."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLIntProperty, XMLProperty


class Vcpu(XMLElement):
    """``<vcpu current='N'>MAX</vcpu>``: MAX vCPUs can exist, N are plugged in."""

    XML_NAME = "vcpu"
    PLACEMENT_STATIC = "static"

    placement = XMLProperty("@placement")
    current = XMLIntProperty("@current")
    count = XMLIntProperty(".")


class CpuFeature(XMLElement):
    XML_NAME = "feature"
    POLICY_REQUIRE = "require"
    POLICY_DISABLE = "disable"

    policy = XMLProperty("@policy")
    name = XMLProperty("@name")


class Cpu(XMLElement):
    XML_NAME = "cpu"
    CHILD_ORDER = ("model", "vendor", "topology", "feature")
    #: host-model keeps guests migratable between different hosts (host-passthrough does not).
    MODE_HOST_MODEL = "host-model"
    MODE_HOST_PASSTHROUGH = "host-passthrough"
    #: libvirt's name for QEMU's ``-cpu max``.
    MODE_MAXIMUM = "maximum"
    MODE_CUSTOM = "custom"

    mode = XMLProperty("@mode")
    match = XMLProperty("@match")
    check = XMLProperty("@check")
    model = XMLProperty("model")
    model_fallback = XMLProperty("model/@fallback")
    sockets = XMLIntProperty("topology/@sockets")
    dies = XMLIntProperty("topology/@dies")
    cores = XMLIntProperty("topology/@cores")
    threads = XMLIntProperty("topology/@threads")

    @property
    def features(self) -> list[CpuFeature]:
        return self.children(CpuFeature)

    def require(self, name: str) -> None:
        feature = self.add_child(CpuFeature())
        feature.policy, feature.name = CpuFeature.POLICY_REQUIRE, name

    @property
    def required(self) -> set[str]:
        return {f.name for f in self.features if f.name and f.policy == CpuFeature.POLICY_REQUIRE}
