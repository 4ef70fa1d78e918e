"""Logins: scrypt hashes, the auth file and its CLI, and app.py refusing to expose itself without one."""

import logging
import subprocess
import sys

import pytest

from backend.auth import Authenticator, AuthError, add_user, hash_password, read_auth_file, verify_password
from tests.conftest import ROOT, cli

FAST = {"n": 2**10, "r": 8, "p": 1}  # the same scheme with a cheap cost, for tests that only need a hash


def test_hash_verifies_only_its_password_and_is_salted():
    encoded = hash_password("correct horse", **FAST)
    assert encoded.startswith("scrypt$1024$8$1$") and "correct horse" not in encoded
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsf", encoded)
    assert not verify_password("", encoded)
    assert hash_password("correct horse", **FAST) != encoded  # a fresh salt every time
    for broken in ("", "scrypt$1$2", "md5$1$8$1$AA==$AA==", encoded.replace("$8$", "$x$"), encoded[:-4] + "!!!="):
        assert not verify_password("correct horse", broken)


def test_cli_adds_users_to_an_owner_only_file_without_echoing_the_password(tmp_path):
    users = tmp_path / "users.txt"
    out = subprocess.run(
        [sys.executable, "-m", "backend.cli", "auth", "add", str(users), "alice", "--password-stdin", "--json"],
        cwd=ROOT,
        input="correct horse battery\n",
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert '"added": true' in out.stdout and "correct horse" not in out.stdout + out.stderr
    assert users.stat().st_mode & 0o777 == 0o600
    assert "correct horse" not in users.read_text()
    add_user(users, "bob", "another long one")
    assert add_user(users, "alice", "a new password") is False  # replaced, not duplicated
    stored = read_auth_file(users)
    assert sorted(stored) == ["alice", "bob"]
    login = Authenticator(stored)
    assert login("alice", "a new password") and login("bob", "another long one")
    assert not login("alice", "correct horse battery") and not login("carol", "a new password")


def test_cli_refuses_a_short_password_and_writes_nothing(tmp_path):
    users = tmp_path / "users.txt"
    out = subprocess.run(
        [sys.executable, "-m", "backend.cli", "auth", "add", str(users), "alice", "--password-stdin"],
        cwd=ROOT,
        input="short\n",
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.strip() == "error: password too short: use at least 8 characters"
    assert not users.exists()
    bad_name = cli(tmp_path, "auth", "add", str(users), "al ice", "--password-stdin")
    assert bad_name.returncode == 2 and "user name 'al ice' is not allowed" in bad_name.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no users"),
        ("# only a comment\n", "has no users"),
        ("alice:plaintext-password\n", "line 1: expected USER:scrypt$"),
        ("alice:scrypt$1$8$1$AA==$AA==\nbob\n", "line 2: expected USER:scrypt$"),
    ],
)
def test_bad_auth_files_name_the_line_and_never_echo_it(tmp_path, text, message):
    users = tmp_path / "users.txt"
    users.write_text(text)
    with pytest.raises(AuthError, match=message.replace("$", r"\$")) as caught:
        read_auth_file(users)
    assert "plaintext-password" not in str(caught.value)


def test_credentials_from_the_command_line_are_checked_and_kept_hashed(caplog):
    login = Authenticator.build(["alice:long enough:with colon"])
    assert login is not None and login.users == ["alice"]
    assert login("alice", "long enough:with colon")
    assert "long enough" not in repr(vars(login))  # only hashes in memory
    with caplog.at_level(logging.WARNING, logger="backend.auth"):
        assert not login("alice", "a wrong password")
    assert "failed login for user 'alice'" in caplog.text and "a wrong password" not in caplog.text
    assert Authenticator.build([], None) is None
    for bad in ("alice", "alice:short", ":long enough pw", "a b:long enough pw"):
        with pytest.raises(AuthError):
            Authenticator.build([bad])


def _app(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TUNEBOARD_", "GRADIO_SERVER"))}
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--host", "0.0.0.0"], {}, "--host 0.0.0.0 makes the app reachable from other machines"),
        ([], {"TUNEBOARD_HOST": "192.168.1.20"}, "--host 192.168.1.20 makes the app reachable"),
        ([], {"GRADIO_SERVER_NAME": "0.0.0.0"}, "--host 0.0.0.0 makes the app reachable"),
        (["--share"], {}, "--share publishes a public link"),
        ([], {"TUNEBOARD_SHARE": "1"}, "--share publishes a public link"),
        (["--auth", "alice"], {}, "--auth needs USER:PASSWORD"),
        (["--auth-file", "/nonexistent/users.txt"], {}, "auth file /nonexistent/users.txt not found"),
        (["--demo", "three"], {}, "must be a run id"),
    ],
)
def test_app_refuses_to_expose_itself_without_a_login(tmp_path, args, env, says):
    out = _app(*args, "--workspace", str(tmp_path / "ws"), env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert says in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ws").exists()  # refused before anything was created


def test_loopback_names_and_addresses():
    sys.path.insert(0, str(ROOT))
    from app import exposure_refusal, is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.5.5.5", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))
    assert exposure_refusal("0.0.0.0", False, has_auth=True, insecure=False, demo=False) is None
    assert exposure_refusal("0.0.0.0", True, has_auth=False, insecure=True, demo=False) is None
    assert exposure_refusal("0.0.0.0", False, has_auth=False, insecure=False, demo=True) is None
