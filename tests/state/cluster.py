"""A throwaway PostgreSQL cluster, for the tests and the scale benchmark: Debian's
``postgresql`` package, a cluster made with ``initdb`` in a temporary folder and started
with ``pg_ctl`` on a unix socket in that folder (no TCP port, nothing shared with a server
the machine may run), stopped and removed at the end. No pytest here: benchmarks/scale.py
starts one too (tests/state/postgres.py turns :class:`ClusterUnavailable` into a skip).

initdb refuses to run as root, so as root the cluster belongs to an unprivileged user
(``postgres`` when the package made it, else ``nobody``) through ``runuser``. Every
connection needs the superuser's password (scram-sha-256), which caldaemon reads from
``daemon.state_password_file`` as a deployment would.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from caldaemon.state.postgres import PostgresLocation

DEADLINE = 60  # seconds for initdb, start or stop; here each takes about a second
USER = "caldaemon"
_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server listens on no port


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server's programs out of PATH, one folder per major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _owner() -> str | None:
    """The unprivileged user the cluster runs as, when this process is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


@dataclass
class Postgres:
    root: Path  # the cluster, its socket and its log
    owner: str | None
    pg_ctl: str
    password: str
    password_file: Path
    _numbers: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@/{database}?host={self.socket_dir}&port={_PORT}"

    def location(self, database: str) -> PostgresLocation:
        return PostgresLocation(self.url(database), password_file=self.password_file)

    def create_database(self) -> str:
        """A new empty database: each test starts from nothing."""
        import psycopg

        name = f"test_{next(self._numbers)}"
        with psycopg.connect(self.url("postgres"), password=self.password, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return name

    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        _run(self.owner, [self.pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def _run(owner: str | None, command: list[str]) -> subprocess.CompletedProcess[str]:
    if owner is not None:
        command = ["runuser", "-u", owner, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE, check=False)


class ClusterUnavailable(Exception):
    """Why no cluster can run here (the message says what to install or what failed)."""


def start_cluster(*, fsync: bool = False) -> Postgres:
    """A running throwaway cluster; :class:`ClusterUnavailable` where there can be none.
    Tests run it without ``fsync`` (nothing to keep after them); a benchmark asks for it,
    so that commits cost what they cost a deployment."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ClusterUnavailable(
            "psycopg is not installed (pip install 'caldaemon[postgresql]')"
        ) from exc
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ClusterUnavailable(
            "PostgreSQL is not installed (apt-get install postgresql; .ci/run does)"
        )
    owner = _owner()
    if os.geteuid() == 0 and owner is None:
        raise ClusterUnavailable("running as root with no unprivileged user for initdb")
    root = Path(tempfile.mkdtemp(prefix="caldaemon-pg-"))
    password = secrets.token_urlsafe(16)
    (root / "socket").mkdir()
    server_password = root / "superuser-password"
    server_password.write_text(password)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        for path in (root, root / "socket", server_password):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    made = _run(
        owner,
        [
            initdb,
            "-D",
            str(root / "data"),
            "-U",
            USER,
            "--auth=scram-sha-256",
            f"--pwfile={server_password}",
            # Byte-order collation by default; caldaemon asks for it on its columns anyway.
            "--locale=C",
            "--encoding=UTF8",
            "--no-sync",
        ],
    )
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(
            f"initdb failed here: {(made.stderr or made.stdout).strip()[-300:]}"
        )
    durable = "on" if fsync else "off"
    options = f"-k {root / 'socket'} -c listen_addresses='' -p {_PORT} -c fsync={durable}"
    started = _run(
        owner,
        [pg_ctl, "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start"],
    )
    if started.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(
            f"PostgreSQL cannot start here: {(log or started.stderr).strip()[-300:]}"
        )
    # caldaemon's copy of the password, as a deployment keeps it: readable by its user only.
    password_file = root / "state-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return Postgres(root, owner, pg_ctl, password, password_file)
