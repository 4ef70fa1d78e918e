"""Who may open the app: users and scrypt-hashed passwords, checked by the login page.

An auth file holds one user per line, ``name:scrypt$N$r$p$salt$hash`` (base64 salt and hash), so it
can be read and edited like an htpasswd file but holds no password. Add a user with

    python -m backend.cli auth add users.txt alice          # asks for the password twice
    printf 'secret\\n' | python -m backend.cli auth add users.txt alice --password-stdin

and start the app with ``python app.py --auth-file users.txt``. ``--auth alice:secret`` also works, but
a password on a command line shows in the process list; prefer the file (or $TUNEBOARD_AUTH).
Nothing here logs a password or a hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

SCHEME = "scrypt"
# scrypt cost: N=2**15, r=8 takes ~50-100 ms and 32 MiB per login on a laptop core, enough to slow
# guessing down without making the login page sluggish.
N, R, P = 2**15, 8, 1
MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8


class AuthError(ValueError):
    """A bad user name, password, credential or auth file line; the message says which and what to do."""


def check_username(name: str) -> str:
    if not USERNAME.match(name or ""):
        raise AuthError(f"user name {name!r} is not allowed: use 1-64 letters, digits, '_', '.', '@' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AuthError(f"password too short: use at least {MIN_PASSWORD} characters")
    if "\n" in password or "\r" in password:
        raise AuthError("password must not contain a line break")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """'scrypt$N$r$p$salt$hash' for `password` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM, dklen=32)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches `encoded`; constant-time comparison, False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def parse_credential(text: str) -> tuple[str, str]:
    """'user:password' (the password may contain ':') -> (user, password)."""
    user, sep, password = (text or "").partition(":")
    if not sep:
        raise AuthError("--auth needs USER:PASSWORD, e.g. --auth alice:long-secret")
    return check_username(user), check_password(password)


def read_auth_file(path: str | Path) -> dict[str, str]:
    """{user: encoded hash} from an auth file; a bad line is named by number, never echoed."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AuthError(
            f"auth file {path} not found: create it with `python -m backend.cli auth add {path} USER`"
        ) from None
    except OSError as e:
        raise AuthError(f"auth file {path} cannot be read: {e.strerror}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, encoded = line.strip().partition(":")
        if not sep or not USERNAME.match(user) or not encoded.startswith(f"{SCHEME}$") or encoded.count("$") != 5:
            raise AuthError(
                f"{path} line {number}: expected USER:scrypt$... (a line written by `backend.cli auth add`)"
            )
        users[user] = encoded
    if not users:
        raise AuthError(f"auth file {path} has no users: add one with `python -m backend.cli auth add {path} USER`")
    return users


def add_user(path: str | Path, user: str, password: str) -> bool:
    """Add or replace `user` in the auth file (created owner-only); True when the user was new."""
    path = Path(path)
    check_username(user)
    check_password(password)
    users = read_auth_file(path) if path.exists() and path.stat().st_size else {}
    is_new = user not in users
    users[user] = hash_password(password)
    text = "".join(f"{name}:{encoded}\n" for name, encoded in users.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return is_new


class Authenticator:
    """The callable Gradio's login page calls with (username, password); True lets the person in."""

    def __init__(self, hashed: dict[str, str]) -> None:
        self._users = dict(hashed)
        self._dummy = hash_password(secrets.token_hex(8))  # same work for unknown users: no timing oracle

    @classmethod
    def build(cls, credentials: Iterable[str] = (), auth_file: str | Path | None = None) -> Authenticator | None:
        """From --auth USER:PASSWORD values and/or --auth-file; None when neither is given."""
        users: dict[str, str] = {}
        if auth_file:
            users.update(read_auth_file(auth_file))
        for text in credentials:
            user, password = parse_credential(text)
            users[user] = hash_password(password)  # kept hashed in memory too
        return cls(users) if users else None

    @property
    def users(self) -> list[str]:
        return sorted(self._users)

    def __call__(self, username: str, password: str) -> bool:
        encoded = self._users.get(username)
        ok = verify_password(password or "", encoded or self._dummy) and encoded is not None
        if not ok:
            log.warning("failed login for user %r", username if USERNAME.match(username or "") else "(invalid name)")
        return ok
