"""login / logout / whoami and the credentials file, against the real app."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from corral.cli import credentials
from tests.unit.cli._real import PASSWORD
from tests.unit.cli.conftest import RealApi, Run


def _login(run_real: Run, real_api: RealApi, password: str = PASSWORD) -> Result:
    return run_real(
        "login", "--username", "admin", "--password-stdin", input=password + "\n", token=False
    )


def _stored(real_api: RealApi) -> dict[str, str]:
    return dict(tomllib.loads((real_api.config_dir / "credentials.toml").read_text()))


def _revoke_behind_the_clis_back(real_api: RealApi) -> None:
    stored = _stored(real_api)
    with real_api.client(stored["token"]) as client:
        assert client.delete(f"/tokens/{stored['token_id']}").status_code == 204


def test_login_stores_url_and_token_privately(run_real: Run, real_api: RealApi) -> None:
    result = _login(run_real, real_api)
    assert result.exit_code == 0, result.output
    path = real_api.config_dir / "credentials.toml"
    data = tomllib.loads(path.read_text())
    assert sorted(data) == ["token", "token_id", "url", "username"]
    assert data["url"] == real_api.url and data["username"] == "admin"
    with real_api.client(data["token"]) as client:  # the stored token is the server's
        assert client.get("/auth/whoami").json()["name"] == "admin"
        mine = [t for t in client.get("/tokens").json()["items"] if t["id"] == data["token_id"]]
    assert mine and mine[0]["name"].startswith("cli-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(real_api.config_dir.stat().st_mode) == 0o700
    assert data["token"] not in result.output
    assert f"logged in to {real_api.url} as admin" in result.stdout
    # The login request itself carried the password, not a token.
    (login_request,) = real_api.requests_to("POST", "/auth/login")
    sent = json.loads(str(login_request[2]))
    assert sent["username"] == "admin" and sent["password"] == PASSWORD
    assert sent["token_name"].startswith("cli-")


def test_login_tokens_expire_and_the_cli_says_when(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    (default,) = real_api.requests_to("POST", "/auth/login")
    assert "expires_in_days" not in json.loads(str(default[2]))  # the server's default
    assert re.search(r"expires \d{4}-\d\d-\d\d \d\d:\d\d UTC", _login(run_real, real_api).stdout)
    asked = run_real("login", "--username", "admin", "--password-stdin", "--expires-in-days", "3",
                     input=PASSWORD + "\n", token=False)  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert (
        json.loads(str(real_api.requests_to("POST", "/auth/login")[-1][2]))["expires_in_days"] == 3
    )
    token_id = tomllib.loads((real_api.config_dir / "credentials.toml").read_text())["token_id"]
    with real_api.client() as client:
        (mine,) = [t for t in client.get("/tokens").json()["items"] if t["id"] == token_id]
    expires = datetime.fromisoformat(mine["expires_at"])
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)


def test_commands_use_the_stored_token(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    result = run_real("whoami", token=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"admin (admin) at {real_api.url}"


def test_stored_token_is_not_sent_to_another_url(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    other = real_api.url.replace("127.0.0.1", "localhost")
    result = run_real("--url", other, "whoami", token=False)
    assert result.exit_code == 1
    assert "not logged in or token revoked: run `corral login`" in result.stderr
    assert real_api.requests[-1][1] == "/api/v1/auth/whoami"


def test_wrong_password_fails_and_stores_nothing(run_real: Run, real_api: RealApi) -> None:
    result = _login(run_real, real_api, password="wrong password")
    assert result.exit_code == 1
    assert "error: login failed: wrong user name or password" in result.stderr
    assert not (real_api.config_dir / "credentials.toml").exists()


def test_empty_password_stdin_is_refused(run_real: Run, real_api: RealApi) -> None:
    result = run_real("login", "--username", "admin", "--password-stdin", input="\n", token=False)
    assert result.exit_code == 1
    assert "no password on standard input" in result.stderr


def test_logout_revokes_the_token_and_removes_the_file(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    stored = _stored(real_api)
    result = run_real("logout", token=False)
    assert result.exit_code == 0, result.output
    assert real_api.requests_to("DELETE", f"/tokens/{stored['token_id']}")
    with real_api.client(stored["token"]) as client:
        assert client.get("/auth/whoami").status_code == 401
    assert not (real_api.config_dir / "credentials.toml").exists()
    again = run_real("logout", token=False)
    assert again.exit_code == 0 and "not logged in" in again.stdout


def test_revoked_token_gets_the_login_hint(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    _revoke_behind_the_clis_back(real_api)
    result = run_real("vm", "list", token=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not logged in or token revoked: run `corral login`")


def test_logout_after_server_side_revoke_still_cleans_up(run_real: Run, real_api: RealApi) -> None:
    assert _login(run_real, real_api).exit_code == 0
    _revoke_behind_the_clis_back(real_api)
    result = run_real("logout", token=False)
    assert result.exit_code == 0, result.output
    assert not (real_api.config_dir / "credentials.toml").exists()


def test_config_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CORRAL_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert credentials.credentials_path() == tmp_path / "xdg" / "corral" / "credentials.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert credentials.config_dir() == tmp_path / "home" / ".config" / "corral"
    monkeypatch.setenv("CORRAL_CONFIG_DIR", str(tmp_path / "explicit"))
    assert credentials.config_dir() == tmp_path / "explicit"


def test_credentials_repr_hides_the_secret() -> None:
    creds = credentials.Credentials(url="http://x", token="s3cret-value")
    assert "s3cret-value" not in repr(creds)


def test_unreadable_credentials_count_as_logged_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CORRAL_CONFIG_DIR", str(tmp_path))
    (tmp_path / "credentials.toml").write_text("url = [broken")
    assert credentials.load() is None
