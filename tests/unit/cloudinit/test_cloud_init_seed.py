"""The NoCloud seed ISO, read back with pycdlib the three ways a reader may name its files."""

from __future__ import annotations

import io

import pycdlib
import pytest
import yaml

from corral.cloudinit.seed import VOLUME_ID, build_seed_iso, meta_data_for

USER_DATA = "#cloud-config\nhostname: c1\nruncmd:\n  - [touch, /run/marker]\n"
NETWORK = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"


def _open(data: bytes) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    return iso


def _read(iso: pycdlib.PyCdlib, **path: str) -> str:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path)
    return out.getvalue().decode()


def _rr_names(iso: pycdlib.PyCdlib) -> set[str]:
    return {
        child.rock_ridge.name().decode()
        for child in iso.list_children(rr_path="/")
        if child.rock_ridge is not None and not (child.is_dot() or child.is_dotdot())
    }


def test_cloud_init_seed_has_label_cidata_and_exact_names() -> None:
    meta = meta_data_for("i-0001", "c1")
    iso = _open(build_seed_iso(meta, USER_DATA, NETWORK))
    try:
        # NoCloud finds the seed by this label (blkid reads the primary volume descriptor).
        assert iso.pvd.volume_identifier.decode().strip() == VOLUME_ID
        for name, text in (
            ("meta-data", meta),
            ("user-data", USER_DATA),
            ("network-config", NETWORK),
        ):
            assert _read(iso, rr_path=f"/{name}") == text
            assert _read(iso, joliet_path=f"/{name}") == text
        assert _rr_names(iso) == {"meta-data", "user-data", "network-config"}
    finally:
        iso.close()


def test_cloud_init_seed_without_network_config_leaves_the_file_out() -> None:
    iso = _open(build_seed_iso(meta_data_for("i-2", "c2"), USER_DATA, None))
    try:
        assert _rr_names(iso) == {"meta-data", "user-data"}
    finally:
        iso.close()


def test_cloud_init_seed_is_the_same_for_the_same_files_but_its_dates() -> None:
    # Two seeds of the same settings differ at most in their timestamps: same size.
    first = build_seed_iso(meta_data_for("i-3", "c3"), USER_DATA, NETWORK)
    second = build_seed_iso(meta_data_for("i-3", "c3"), USER_DATA, NETWORK)
    assert len(first) == len(second) and len(first) % 2048 == 0


@pytest.mark.parametrize(
    ("instance_id", "hostname"),
    [("i-1", "c1"), ('odd "id" \\ with\nnewline', "h"), ("iid-ünïcode", "web-01")],
)
def test_cloud_init_meta_data_reads_back_as_given(instance_id: str, hostname: str) -> None:
    parsed = yaml.safe_load(meta_data_for(instance_id, hostname))
    assert parsed == {"instance-id": instance_id, "local-hostname": hostname}
