"""Corral: a KVM/QEMU virtualization manager over libvirt."""

__version__ = "0.1.0"
