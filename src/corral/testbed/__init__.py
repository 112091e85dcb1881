"""Test beds on one machine: guests built from Debian packages and private libvirt daemons.

* :mod:`corral.testbed.guest_images` — kernel+initramfs and bootable qcow2 test guests (cached).
* :mod:`corral.testbed.guest_domains` — TCG domain XML for them and bounded waits on their output.
* :mod:`corral.testbed.private_libvirtd` — a libvirtd in private mount and network namespaces.
* :mod:`corral.testbed.storage_server` — NFS (nfs-ganesha) and iSCSI (tgt) for the namespace hosts.
"""
