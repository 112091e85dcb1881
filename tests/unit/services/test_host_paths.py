"""The host path rule: non-admins never name a host file; admins only under the roots, after
symbolic links and ``..`` are resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import PermissionDenied
from corral.model.auth import Role
from corral.services.host_paths import HostPathRule
from corral.services.principal import Principal

ADMIN = Principal("alice", Role.ADMIN)
OPERATOR = Principal("olga", Role.OPERATOR)
VIEWER = Principal("vic", Role.VIEWER)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ok.img").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"s")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside" / "secret")
    (tmp_path / "rootlink").symlink_to(tmp_path / "root")
    return tmp_path


@pytest.mark.parametrize("who", [OPERATOR, VIEWER])
@pytest.mark.parametrize("name", ["root/ok.img", "outside/secret", "no/such/file"])
def test_non_admins_are_refused_whatever_the_path(tree: Path, who: Principal, name: str) -> None:
    rule = HostPathRule([str(tree / "root")])
    with pytest.raises(PermissionDenied) as caught:
        rule.check(who, "cdrom", str(tree / name), instead="name an image")
    # The same sentence for an existing, a forbidden and a missing file: no existence oracle.
    assert caught.value.message == "cdrom: only admins may name files on the host by path; " + (
        "name an image"
    )


def test_admins_may_name_files_under_a_root(tree: Path) -> None:
    rule = HostPathRule([str(tree / "root")])
    assert rule.check(ADMIN, "cdrom", str(tree / "root" / "ok.img"), instead="") == str(
        tree / "root" / "ok.img"
    )
    # A root named through a symbolic link covers the directory it points at, and a path
    # through the link resolves to the file itself.
    via = HostPathRule([str(tree / "rootlink")])
    assert via.check(ADMIN, "cdrom", str(tree / "rootlink" / "ok.img"), instead="") == str(
        tree / "root" / "ok.img"
    )


@pytest.mark.parametrize(
    "name",
    [
        "outside/secret",  # plainly outside
        "root/../outside/secret",  # .. out of the root
        "root/link",  # a link in the root to a file outside
        "rootx/file",  # a sibling whose name starts like the root
    ],
)
def test_admins_are_refused_outside_the_roots(tree: Path, name: str) -> None:
    rule = HostPathRule([str(tree / "root")])
    with pytest.raises(PermissionDenied, match="outside the directories"):
        rule.check(ADMIN, "disk 'root': import_path", str(tree / name), instead="")


def test_no_roots_by_default_but_corrals_own(tree: Path) -> None:
    rule = HostPathRule([], own=[str(tree / "root")])
    assert rule.check(ADMIN, "cdrom", str(tree / "root" / "ok.img"), instead="")
    with pytest.raises(PermissionDenied):
        HostPathRule([]).check(ADMIN, "cdrom", str(tree / "root" / "ok.img"), instead="")


def test_relative_roots_are_ignored(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    rule = HostPathRule(["root"])
    assert rule.roots == ()
    with pytest.raises(PermissionDenied):
        rule.check(ADMIN, "cdrom", str(tree / "root" / "ok.img"), instead="")


def test_remote_paths_are_compared_as_written() -> None:
    rule = HostPathRule(["/srv/iso"])
    assert rule.check(ADMIN, "cdrom", "/srv/iso/./a.iso", instead="", local=False) == (
        "/srv/iso/a.iso"
    )
    with pytest.raises(PermissionDenied, match=r"may not contain '\.\.'"):
        rule.check(ADMIN, "cdrom", "/srv/iso/../../etc/shadow", instead="", local=False)
    with pytest.raises(PermissionDenied, match="outside"):
        rule.check(ADMIN, "cdrom", "/etc/shadow", instead="", local=False)
