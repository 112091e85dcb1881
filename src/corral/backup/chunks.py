"""Chunks: pieces of a disk of at most ``CHUNK_SIZE`` bytes, each stored once, by name.

A chunk's name is the SHA-256 of its bytes (hex), or in an encrypted store the keyed HMAC of
them (:mod:`.keys`), so equal data is stored once however many disks and backups hold it.
A chunk file is ``MAGIC``, a flags byte, and the payload: the bytes compressed with zstd
(kept raw when that does not make them smaller), then, in an encrypted store, a 12-byte nonce
and their AES-256-GCM ciphertext with the chunk's name as associated data. Reading a chunk
checks its name against its bytes again: a damaged file is reported, never returned.

Files are written to a temporary name, fsynced and renamed: a crash leaves either the whole
chunk or none (and at most a temporary file, which GC removes).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corral.backup.keys import StoreKey
from corral.errors import CorralError
from corral.files import TEMPORARY_GLOB, write_atomic

CHUNK_SIZE = 4 * 1024 * 1024
MAGIC = b"CRLCHNK1"
_COMPRESSED = 1
_ENCRYPTED = 2
_NONCE = 12
ZSTD_LEVEL = 3


class CorruptChunk(CorralError):
    """A chunk whose file is missing, damaged or does not match its name."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"chunk {name} {why}")
        self.chunk = name


@dataclass(frozen=True)
class Stored:
    name: str
    #: Whether the store did not have it before.
    new: bool
    #: Bytes its file takes (0 when it was there already).
    stored_bytes: int


class ChunkStore:
    def __init__(self, directory: Path, key: StoreKey | None = None) -> None:
        self.directory = directory
        self.key = key
        self._compress = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._decompress = zstandard.ZstdDecompressor()

    def name_of(self, data: bytes) -> str:
        return self.key.name(data) if self.key else hashlib.sha256(data).hexdigest()

    def path(self, name: str) -> Path:
        return self.directory / name[:2] / name

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def put(self, data: bytes) -> Stored:
        if len(data) > CHUNK_SIZE:
            raise ValueError(f"a chunk holds at most {CHUNK_SIZE} bytes, not {len(data)}")
        name = self.name_of(data)
        target = self.path(name)
        if target.is_file():
            return Stored(name, False, 0)
        packed = self._pack(name, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, packed)
        return Stored(name, True, len(packed))

    def get(self, name: str) -> bytes:
        try:
            raw = self.path(name).read_bytes()
        except FileNotFoundError:
            raise CorruptChunk(name, "is missing from the store") from None
        data = self._unpack(name, raw)
        if self.name_of(data) != name:
            raise CorruptChunk(name, "does not match its name (its file is damaged)")
        return data

    def names(self) -> Iterator[str]:
        """Every chunk in the store (not temporary files)."""
        if not self.directory.is_dir():
            return
        for sub in self.directory.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for entry in sub.iterdir():
                    if not entry.name.startswith("."):
                        yield entry.name

    def leftovers(self) -> Iterator[Path]:
        """Temporary files of writes that never finished."""
        if self.directory.is_dir():
            yield from self.directory.glob(f"*/{TEMPORARY_GLOB}")

    def delete(self, name: str) -> int:
        path = self.path(name)
        size = path.stat().st_size
        path.unlink()
        return size

    # -- the file format -------------------------------------------------------------------
    def _pack(self, name: str, data: bytes) -> bytes:
        flags = 0
        payload = self._compress.compress(data)
        if len(payload) < len(data):
            flags |= _COMPRESSED
        else:
            payload = data
        if self.key is not None:
            flags |= _ENCRYPTED
            nonce = secrets.token_bytes(_NONCE)
            header = MAGIC + bytes([flags])
            sealed = AESGCM(self.key.encrypt).encrypt(nonce, payload, header + name.encode())
            return header + nonce + sealed
        return MAGIC + bytes([flags]) + payload

    def _unpack(self, name: str, raw: bytes) -> bytes:
        if len(raw) < len(MAGIC) + 1 or not raw.startswith(MAGIC):
            raise CorruptChunk(name, "is not a chunk file (its header is damaged)")
        flags = raw[len(MAGIC)]
        body = raw[len(MAGIC) + 1 :]
        if flags & _ENCRYPTED:
            if self.key is None:
                raise CorruptChunk(name, "is encrypted, but no key was given")
            nonce, sealed = body[:_NONCE], body[_NONCE:]
            try:
                body = AESGCM(self.key.encrypt).decrypt(
                    nonce, sealed, raw[: len(MAGIC) + 1] + name.encode()
                )
            except InvalidTag:
                raise CorruptChunk(
                    name, "fails its authentication (damaged, or another key)"
                ) from None
        elif self.key is not None:
            raise CorruptChunk(name, "is not encrypted in an encrypted store")
        if flags & _COMPRESSED:
            try:
                return self._decompress.decompress(body, max_output_size=CHUNK_SIZE)
            except zstandard.ZstdError:
                raise CorruptChunk(name, "does not decompress (its file is damaged)") from None
        return body
