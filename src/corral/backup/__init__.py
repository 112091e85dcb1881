"""Backup stores: a directory of content-addressed chunks and one manifest per backup.

- :mod:`.keys`: the optional encryption key (AES-256-GCM) an administrator keeps.
- :mod:`.chunks`: fixed-size chunks named by their SHA-256 (or, encrypted, a keyed hash),
  compressed with zstd, written once.
- :mod:`.manifest`: what one backup holds (per disk, its chunks in order).
- :mod:`.store`: a store on disk: writing a backup, reading one back, verify, prune, GC.

Nothing here talks to libvirt: the backup services read the disks and hand the bytes over.
"""
