"""Pool room promised to running uploads (``services/images/room.py``); the pool's free space
is a counter here that shrinks as an upload writes, as a real pool's does."""

from __future__ import annotations

import asyncio

import pytest

from corral.errors import InsufficientResources
from corral.services.images.room import PoolRoom

GIB = 2**30


class Pool:
    def __init__(self, free: int) -> None:
        self.free = free

    async def free_bytes(self) -> int:
        await asyncio.sleep(0.01)  # an RPC: others may ask meanwhile
        return self.free


async def test_concurrent_uploads_cannot_overbook_the_pool() -> None:
    """Three 60 GiB uploads against 77 GiB free: one is accepted, two are refused."""
    room, pool = PoolRoom(), Pool(77 * GIB)
    accepted = asyncio.Event()
    release = asyncio.Event()

    async def upload(name: str) -> str:
        try:
            async with room.promise("h1", name, 60 * GIB, pool.free_bytes):
                accepted.set()
                await release.wait()
                return "accepted"
        except InsufficientResources as exc:
            return exc.message

    runs = [asyncio.create_task(upload(f"img{i}")) for i in range(3)]
    await accepted.wait()
    await asyncio.sleep(0.1)
    release.set()
    results = await asyncio.gather(*runs)
    assert results.count("accepted") == 1
    refusals = [r for r in results if r != "accepted"]
    assert all("77.0 GiB free" in r and "60.0 GiB is promised" in r for r in refusals)
    assert room.promised("h1") == 0


async def test_a_promise_shrinks_as_the_upload_writes_and_ends_with_it() -> None:
    room, pool = PoolRoom(), Pool(100 * GIB)
    with pytest.raises(RuntimeError):
        async with room.promise("h1", "a", 60 * GIB, pool.free_bytes) as promise:
            pool.free -= 40 * GIB
            promise.written(40 * GIB)
            assert room.promised("h1") == 20 * GIB
            # 60 GiB free, 20 GiB still promised: 40 GiB fit, 41 GiB do not.
            async with room.promise("h1", "b", 40 * GIB, pool.free_bytes):
                pass
            with pytest.raises(InsufficientResources):
                async with room.promise("h1", "c", 41 * GIB, pool.free_bytes):
                    pass
            # Another host's pool is another matter.
            async with room.promise("h2", "c", 41 * GIB, Pool(50 * GIB).free_bytes):
                pass
            raise RuntimeError("the upload failed")
    assert room.promised("h1") == 0


async def test_without_promises_the_refusal_names_only_the_free_space() -> None:
    with pytest.raises(InsufficientResources) as refused:
        async with PoolRoom().promise("h1", "big.iso", 2 * GIB, Pool(GIB).free_bytes):
            pass
    assert refused.value.message == (
        "host 'h1' has 1.0 GiB free in Corral's storage pool, image 'big.iso' needs 2.0 GiB: "
        "free space there or upload to another host"
    )
