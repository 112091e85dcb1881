"""Backups of VMs into backup stores (:mod:`corral.backup`)."""
