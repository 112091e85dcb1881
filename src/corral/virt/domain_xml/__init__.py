"""Domain XML as small declarative classes (one per element) and the VmSpec → XML builder."""

from corral.virt.domain_xml.builder import HostDefaults, build_domain, cdrom_disk, free_target
from corral.virt.domain_xml.domain import Domain

__all__ = ["Domain", "HostDefaults", "build_domain", "cdrom_disk", "free_target"]
