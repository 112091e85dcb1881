"""``corral admin export-secrets`` / ``import-secrets`` and the start-up check they serve: a
second instance with keys of its own is refused on PostgreSQL until it imports the cluster's."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from corral.cli.main import app
from corral.config import Settings
from corral.errors import Conflict
from corral.pki import ClusterPki
from corral.pki.shared import FORMAT, _fernet, ensure_power_key, fingerprints
from corral.services._db import Db
from corral.services.runtime import Services
from corral.services.shared_secrets import check_shared_secrets, refuse_missing_secrets
from corral.store import Store

PASSPHRASE = "correct horse battery"


def _admin(data_dir: Path, *args: str, input: str | None = None) -> Result:
    env = {"CORRAL_DATA_DIR": str(data_dir), "CORRAL_CONFIG": str(data_dir / "none.toml")}
    return CliRunner().invoke(app, ["admin", *args], env=env, input=input)


def _instance(path: Path) -> Path:
    ClusterPki(path).ensure()
    ensure_power_key(path)
    (path / "ssh").mkdir(mode=0o700)
    (path / "ssh" / "known_hosts").write_text("h1 ssh-ed25519 AAAA\n")
    return path


@pytest.mark.postgres
def test_an_instance_with_its_own_keys_is_refused_until_it_imports_the_clusters(
    tmp_path: Path, pg_url: str
) -> None:
    first, second = _instance(tmp_path / "a"), _instance(tmp_path / "b")
    store = Store.from_url(pg_url)
    try:
        db = Db(store)
        asyncio.run(check_shared_secrets(db, first, "instance a"))  # the first records its own
        lacks = "lacks the cluster's pki/console-client-ca, pki/libvirt-ca"
        with pytest.raises(Conflict, match=lacks):
            asyncio.run(refuse_missing_secrets(db, tmp_path / "fresh"))
        asyncio.run(refuse_missing_secrets(db, second))  # keys it has are compared later
        with pytest.raises(Conflict) as refused:
            asyncio.run(check_shared_secrets(db, second, "instance b"))
        assert "recorded by instance instance a" in refused.value.message
        assert "corral admin export-secrets FILE" in refused.value.message

        bundle = tmp_path / "cluster.secrets"
        exported = _admin(first, "export-secrets", str(bundle), input=f"{PASSPHRASE}\n" * 2)
        assert exported.exit_code == 0, exported.output
        assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
        assert b"BEGIN" not in bundle.read_bytes()  # sealed, not PEM in clear
        wrong = _admin(second, "import-secrets", str(bundle), input="not the passphrase\n")
        assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
        imported = _admin(second, "import-secrets", str(bundle), input=f"{PASSPHRASE}\n")
        assert imported.exit_code == 0, imported.output

        assert fingerprints(second) == fingerprints(first)
        key = second / "pki" / "libvirt-ca" / "ca-key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (second / "ssh" / "known_hosts").read_text() == "h1 ssh-ed25519 AAAA\n"
        asyncio.run(check_shared_secrets(db, second, "instance b"))
    finally:
        store.dispose()


def test_one_instance_on_sqlite_follows_its_data_directory(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'corral.db'}")
    try:
        db = Db(store)
        asyncio.run(check_shared_secrets(db, _instance(tmp_path / "a"), "one"))
        # New keys on purpose (a fresh data directory over an old database): not refused.
        asyncio.run(check_shared_secrets(db, _instance(tmp_path / "b"), "one"))
    finally:
        store.dispose()


def test_a_bundle_cannot_write_outside_what_is_shared(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.write_text('{"format": "something else"}')
    result = _admin(_instance(tmp_path / "a"), "import-secrets", str(bundle), input="x" * 12 + "\n")
    assert result.exit_code == 1 and "not a secrets file" in result.output


def test_a_sealed_bundle_naming_other_files_is_refused(tmp_path: Path) -> None:
    salt = b"0123456789abcdef"
    files = {
        "pki/../../evil": {"mode": 0o600, "data": ""},
        "etc/passwd": {"mode": 0o644, "data": ""},
    }
    for name, entry in files.items():
        sealed = _fernet(PASSPHRASE, salt).encrypt(json.dumps({name: entry}).encode()).decode()
        outer = {"format": FORMAT, "salt": base64.b64encode(salt).decode(), "sealed": sealed}
        bundle = tmp_path / "bundle"
        bundle.write_text(json.dumps(outer))
        result = _admin(tmp_path / "a", "import-secrets", str(bundle), input=f"{PASSPHRASE}\n")
        assert result.exit_code == 1 and "outside what is shared" in result.output
    assert not (tmp_path / "evil").exists()


@pytest.mark.postgres
def test_services_of_an_instance_without_the_clusters_keys_do_not_start(
    tmp_path: Path, pg_url: str
) -> None:
    """What ``corral serve`` runs at start: refused before it makes keys of its own."""
    store = Store.from_url(pg_url)
    try:
        asyncio.run(check_shared_secrets(Db(store), _instance(tmp_path / "a"), "instance a"))
    finally:
        store.dispose()
    fresh = tmp_path / "b"
    settings = Settings(
        data_dir=fresh,
        database_url=pg_url,
        local_host_uri="test:///default",
        allow_test_hosts=True,
        pool_dir=str(fresh / "pool"),
    )

    async def start() -> None:
        services = Services(settings)
        try:
            with pytest.raises(Conflict, match="corral admin import-secrets FILE"):
                await services.start()
        finally:
            await services.stop()

    asyncio.run(start())
    assert not (fresh / "pki" / "libvirt-ca").exists()
