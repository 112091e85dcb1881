"""The newc writer, checked against GNU cpio (an independent reader) and the format's rules."""

from __future__ import annotations

import gzip
import re
import stat
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.testbed import _cpio


def gnu_cpio(archive: bytes, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["cpio", "--quiet", *args], input=archive, capture_output=True, cwd=cwd, check=True
    )
    return done.stdout.decode()


def sample_entries() -> list[_cpio.CpioEntry]:
    return [
        _cpio.directory("bin"),
        _cpio.directory("dev"),
        _cpio.regular("bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
        _cpio.symlink("bin/sh", "tool"),
        _cpio.char_device("dev/console", 5, 1),
        _cpio.regular("empty", b""),
    ]


def test_gnu_cpio_lists_every_member_with_its_type() -> None:
    listing = gnu_cpio(_cpio.newc_archive(sample_entries()), "-itv").splitlines()
    by_name = {line.split()[-1] if "->" not in line else line.split()[-3]: line for line in listing}
    assert set(by_name) == {"bin", "dev", "bin/tool", "bin/sh", "dev/console", "empty"}
    assert by_name["bin"].startswith("drwxr-xr-x")
    assert by_name["bin/tool"].startswith("-rwxr-xr-x")
    assert by_name["bin/sh"].startswith("lrwxrwxrwx") and by_name["bin/sh"].endswith("-> tool")
    assert by_name["dev/console"].startswith("crw-------")
    assert re.search(r" 5,\s+1 ", by_name["dev/console"])


def test_gnu_cpio_extracts_contents_and_links(tmp_path: Path) -> None:
    entries = [e for e in sample_entries() if not stat.S_ISCHR(e.mode)]
    gnu_cpio(_cpio.newc_archive(entries), "-id", cwd=tmp_path)
    assert (tmp_path / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "bin/sh").readlink() == Path("tool")
    assert (tmp_path / "empty").read_bytes() == b""


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.dictionaries(
        st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=13),
        st.binary(max_size=9),
        min_size=1,
        max_size=6,
    )
)
def test_any_name_and_data_length_round_trips(files: dict[str, bytes], tmp_path: Path) -> None:
    # Names and sizes of every length mod 4 exercise both padding rules.
    files = {name: data for name, data in files.items() if name not in (".", "..")}
    target = Path(tempfile.mkdtemp(dir=tmp_path))
    archive = _cpio.newc_archive(_cpio.regular(n, d) for n, d in files.items())
    assert len(archive) % 4 == 0
    gnu_cpio(archive, "-id", cwd=target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files


def test_header_layout_and_trailer() -> None:
    archive = _cpio.newc_archive([_cpio.regular("ab", b"xyz")])
    assert archive[:6] == b"070701"

    def field(index: int) -> int:
        return int(archive[6 + 8 * index : 14 + 8 * index], 16)

    assert field(1) == stat.S_IFREG | 0o644
    assert (field(5), field(6), field(11)) == (0, 3, 3)  # mtime, file size, name size with NUL
    # 110-byte header + "ab\0" = 113, padded to 116; data 3 bytes padded to 4.
    assert archive[110:116] == b"ab\0\0\0\0"
    assert archive[116:120] == b"xyz\0"
    assert archive[120:126] == b"070701"
    assert archive[120 + 110 : 120 + 121] == b"TRAILER!!!\0"


def test_gzip_initramfs_is_reproducible_and_decompresses_to_the_archive() -> None:
    first = _cpio.gzip_initramfs(sample_entries())
    assert first == _cpio.gzip_initramfs(sample_entries())
    assert gzip.decompress(first) == _cpio.newc_archive(sample_entries())


@pytest.mark.parametrize("name", ["", "/etc/passwd"])
def test_absolute_or_empty_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        _cpio.newc_archive([_cpio.regular(name, b"")])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        _cpio.newc_archive([_cpio.regular("a", b"1"), _cpio.regular("a", b"2")])
