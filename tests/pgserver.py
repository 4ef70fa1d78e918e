"""A real PostgreSQL server for the tests: Debian's binaries, a temp data dir, 127.0.0.1, a free port.

`make test` installs Debian's `postgresql` package. The server is started once per test session
(as the `postgres` user when the tests run as root: PostgreSQL refuses to run as root), every test
gets a fresh database, and the server is stopped at the end. Where it cannot be installed the
PostgreSQL variants are skipped with the reason, except in CI, where that is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

USER = "tuneboard"
_counter = itertools.count(1)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl start on loopback; `new_database()` returns a URL to an empty database."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tb-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses root: run it as Debian's unprivileged postgres user
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=200"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"tb_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server, or a skip with the reason (a failure in CI)."""
    bin_dir = _bin_dir()
    reason = None
    if bin_dir is None:
        reason = "PostgreSQL is not installed (`make test` installs Debian's postgresql package as root)"
    elif os.geteuid() == 0 and shutil.which("runuser") is None:
        reason = "running as root without runuser: cannot start PostgreSQL as an unprivileged user"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        print(f"\nskipping PostgreSQL tests: {reason}")
        pytest.skip(reason)
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except subprocess.CalledProcessError as e:
        log = (server.dir / "log").read_text(errors="replace")[-2000:] if (server.dir / "log").exists() else ""
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {e.stderr.decode(errors='replace')[-2000:]}\n{log}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, monkeypatch) -> str:
    """Each test using it runs twice: on a SQLite file and on a fresh PostgreSQL database.

    DATABASE_URL is set for the test, so workers, CLI processes and a supervisor it starts use it too.
    """
    return use_database(request, tmp_path, monkeypatch)


def use_database(request, tmp_path, monkeypatch) -> str:
    """The URL for `request.param` ("sqlite" or "postgresql"), also set as DATABASE_URL for child processes."""
    if request.param == "sqlite":
        monkeypatch.delenv("DATABASE_URL", raising=False)
        return f"sqlite:///{tmp_path / 'ws' / 'tuneboard.db'}"
    url = request.getfixturevalue("postgres_server").new_database()
    monkeypatch.setenv("DATABASE_URL", url)
    return url
