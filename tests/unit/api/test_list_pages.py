"""Every list route answers pages: ``{"items", "next_cursor"}``, continued by cursor to the
same items as one large page, a cursor of another route or query refused (422)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from tests.unit.api.conftest import NODE_XML, Api

VMS = ("lp-vm", "lp-vm2")
ISOS = ("_iso.lp-a.iso", "_iso.lp-b.iso")
NETWORKS = ("lp-net1", "lp-net2")

#: List routes whose items exist on a fresh app on the test driver (or are made below).
ROUTES = [
    "/api/v1/hosts",
    "/api/v1/images",
    "/api/v1/volumes",
    "/api/v1/storage-domains",
    "/api/v1/storage-domains/local/volumes",
    "/api/v1/networks",
    "/api/v1/hosts/test/nics",
    "/api/v1/tokens",
    "/api/v1/users",
    "/api/v1/vms/lp-vm/snapshots",
    "/api/v1/tasks",
    "/api/v1/audit",
]


@pytest.fixture(scope="module", autouse=True)
def items(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """More than one of each: a second host, VMs (disks, audit entries), snapshots, images,
    networks (tasks); all gone afterwards (the test driver's state outlives the app)."""
    headers = api.headers()
    node = tmp_path_factory.mktemp("lp") / "node.xml"
    node.write_text(NODE_XML)
    hosts = api.services.hosts

    async def register() -> None:
        # A node file is no URI the API takes: registered as the configuration would.
        uri = f"test://{node}"
        await hosts.register("lp-h2", uri, None, await hosts.identify("lp-h2", uri))

    assert api.client.portal is not None
    api.client.portal.call(register)
    conn = libvirt.open("test:///default")
    pool = conn.storagePoolLookupByName("corral")
    for iso in ISOS:
        xml = f"<volume><name>{iso}</name><capacity unit='bytes'>1048576</capacity></volume>"
        pool.createXML(xml, 0)
    for name in VMS:
        spec = {"name": name, "disks": [{"size_gib": 1}], "nics": [], "host": "test"}
        assert api.client.post("/api/v1/vms", json=spec, headers=headers).status_code == 201
    for snap in ("s1", "s2", "s3"):
        made = api.client.post("/api/v1/vms/lp-vm/snapshots", json={"name": snap}, headers=headers)
        assert made.status_code in (201, 202), made.text
    for net in NETWORKS:
        body = {"name": net, "kind": "isolated", "required": False}
        assert api.client.post("/api/v1/networks", json=body, headers=headers).status_code < 300
    yield
    for net in NETWORKS:
        api.client.delete(f"/api/v1/networks/{net}", headers=headers)
    for name in VMS:
        api.client.delete(f"/api/v1/vms/{name}", params={"delete_disks": True}, headers=headers)
    for iso in ISOS:
        pool.storageVolLookupByName(iso).delete(0)
    conn.close()
    api.client.delete("/api/v1/hosts/lp-h2", headers=headers)


def _page(api: Api, path: str, **params: Any) -> dict[str, Any]:
    answer = api.client.get(path, params=params, headers=api.headers())
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    assert set(page) == {"items", "next_cursor"}
    return page


def _identity(item: dict[str, Any]) -> tuple[object, ...]:
    """What names an item (its other fields, e.g. when a host was last checked, may move)."""
    return tuple(item.get(k) for k in ("id", "host", "domain", "name"))


@pytest.mark.parametrize("path", ROUTES)
def test_pages_of_one_cover_the_list(api: Api, path: str) -> None:
    whole = _page(api, path, limit=1000)
    assert whole["next_cursor"] is None
    paged: list[Any] = []
    cursor = None
    for _ in range(len(whole["items"]) + 1):
        page = _page(api, path, limit=1, **({"cursor": cursor} if cursor else {}))
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [_identity(i) for i in paged] == [_identity(i) for i in whole["items"]]
    if len(whole["items"]) > 1:
        first = _page(api, path, limit=1)["next_cursor"]
        for other in ROUTES:
            if other != path:
                refused = api.client.get(other, params={"cursor": first}, headers=api.headers())
                assert refused.status_code == 422, (other, refused.text)
                assert "another query" in refused.json()["detail"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_out_of_range_is_refused(api: Api, path: str, limit: int) -> None:
    answer = api.client.get(path, params={"limit": limit}, headers=api.headers())
    assert answer.status_code == 422, answer.text


def test_most_lists_have_several_items(api: Api) -> None:
    """The cursor test above means something: most lists have more than one item here."""
    counts = {p: len(_page(api, p)["items"]) for p in ROUTES}
    several = [p for p, n in counts.items() if n > 1]
    assert len(several) >= len(ROUTES) - 2, counts
