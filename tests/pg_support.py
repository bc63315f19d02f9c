"""A real PostgreSQL server for the tests: Debian's ``postgresql`` 15, ``initdb`` into a temporary
directory, listening on 127.0.0.1 only with its socket in that directory, started once per test
session and stopped at its end. Each test gets a database of its own (``CREATE DATABASE``), so the
store under test starts empty, as a fresh SQLite file does (with the schema already made, for the
``store_location`` fixture: a copy of one database migrated once).

``initdb`` refuses to run as root: as root the server runs as the ``postgres`` user (which the
Debian package creates). ``fsync=off`` only for speed: durability of the server itself is not what
the tests test."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "pg"
BACKENDS = ("sqlite", "postgresql")


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="portalguard-pg-"))
        self.port = _free_port()
        self._names = itertools.count(1)
        self._template: str | None = None

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        run = self._as_owner()
        data = self.dir / "data"
        if not data.exists():  # started again after halt(): the same data, the same port
            subprocess.run(
                [*run, str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync"],
                check=True,
                capture_output=True,
            )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        subprocess.run(
            [*run, str(BIN / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o", options, "start"],
            check=True,
            capture_output=True,
        )

    def halt(self) -> None:
        """Stop the server now (connections cut), keeping its data for ``start()``."""
        subprocess.run(
            [*self._as_owner(), str(BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
            capture_output=True,
        )

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, *, with_schema: bool = False) -> str:
        """A new database, empty, or (``with_schema``) copied from one the store's schema was created
        in once per session (a copy takes a quarter of the time of running every migration); its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        template = f' TEMPLATE "{self._schema_template()}"' if with_schema else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{template}')
        return self.url(name)

    def _schema_template(self) -> str:
        if self._template is None:
            from failover.store import Store

            url = self.new_database()
            Store(url).close()  # migrated to the newest revision, every connection closed
            self._template = url.rsplit("/", 1)[1]
        return self._template


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives: a fresh SQLite file, then a fresh PostgreSQL database (holding the
    schema already: what a first open would make of an empty one; the migrations' own tests start empty)."""
    if request.param == "sqlite":
        return str(tmp_path / "portalguard.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database(with_schema=True)
