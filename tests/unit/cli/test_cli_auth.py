"""login / logout / whoami and the credentials file."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import Result

from corral.cli import credentials
from tests.unit.cli.canned_api import PASSWORD
from tests.unit.cli.conftest import CannedApi, Run


def _login(run: Run, api: CannedApi, password: str = PASSWORD) -> Result:
    return run(
        "login", "--username", "admin", "--password-stdin", input=password + "\n", token=False
    )


def test_login_stores_url_and_token_privately(run: Run, api: CannedApi) -> None:
    result = _login(run, api)
    assert result.exit_code == 0, result.output
    path = api.config_dir / "credentials.toml"
    data = tomllib.loads(path.read_text())
    assert data == {"url": api.url, "token": api.state.token, "token_id": "t1", "username": "admin"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(api.config_dir.stat().st_mode) == 0o700
    assert api.state.token not in result.output
    assert f"logged in to {api.url} as admin" in result.stdout
    # The login request itself carried the password, not a token.
    (login_request,) = api.requests_to("POST", "/auth/login")
    sent = json.loads(str(login_request[2]))
    assert sent["username"] == "admin" and sent["password"] == PASSWORD
    assert sent["token_name"].startswith("cli-")


def test_commands_use_the_stored_token(run: Run, api: CannedApi) -> None:
    assert _login(run, api).exit_code == 0
    result = run("whoami", token=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"admin (admin) at {api.url}"


def test_stored_token_is_not_sent_to_another_url(run: Run, api: CannedApi) -> None:
    assert _login(run, api).exit_code == 0
    other = api.url.replace("127.0.0.1", "localhost")
    result = run("--url", other, "whoami", token=False)
    assert result.exit_code == 1
    assert "not logged in or token revoked: run `corral login`" in result.stderr
    assert api.state.requests[-1][1] == "/api/v1/auth/whoami"


def test_wrong_password_fails_and_stores_nothing(run: Run, api: CannedApi) -> None:
    result = _login(run, api, password="wrong password")
    assert result.exit_code == 1
    assert "error: login failed: wrong user name or password" in result.stderr
    assert not (api.config_dir / "credentials.toml").exists()


def test_empty_password_stdin_is_refused(run: Run, api: CannedApi) -> None:
    result = run("login", "--username", "admin", "--password-stdin", input="\n", token=False)
    assert result.exit_code == 1
    assert "no password on standard input" in result.stderr


def test_logout_revokes_the_token_and_removes_the_file(run: Run, api: CannedApi) -> None:
    assert _login(run, api).exit_code == 0
    result = run("logout", token=False)
    assert result.exit_code == 0, result.output
    assert api.requests_to("DELETE", "/tokens/t1")
    assert "t1" in api.state.revoked
    assert not (api.config_dir / "credentials.toml").exists()
    again = run("logout", token=False)
    assert again.exit_code == 0 and "not logged in" in again.stdout


def test_revoked_token_gets_the_login_hint(run: Run, api: CannedApi) -> None:
    assert _login(run, api).exit_code == 0
    api.state.revoked.add("t1")
    result = run("vm", "list", token=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not logged in or token revoked: run `corral login`")


def test_logout_after_server_side_revoke_still_cleans_up(run: Run, api: CannedApi) -> None:
    assert _login(run, api).exit_code == 0
    api.state.revoked.add("t1")
    result = run("logout", token=False)
    assert result.exit_code == 0, result.output
    assert not (api.config_dir / "credentials.toml").exists()


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
