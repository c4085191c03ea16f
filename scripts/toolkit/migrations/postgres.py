"""A throwaway PostgreSQL: Debian's initdb and postgres as plain processes on 127.0.0.1.

The server runs from a temporary folder on a free port and is stopped by its PID. PostgreSQL
refuses to run as root; as root it runs as `nobody` (the folder is handed to that user).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess  # nosec B404  # runs PostgreSQL's own binaries, no shell
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.processes import free_port

UNPRIVILEGED = "nobody"
SUPERUSER = "postgres"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    if not found:
        found = [p for p in [shutil.which("postgres")] if p]
    if not found:
        raise ToolkitError(
            "PostgreSQL is not installed; run `./dev setup` (Debian's postgresql package) or "
            "give --database-url."
        )
    return Path(found[-1]).parent


def _version(path: str) -> int:
    part = Path(path).parents[1].name
    return int(part) if part.isdigit() else 0


@dataclass
class Postgres:
    """A running server; `url(name)` is a database on it, `create(name)` makes one."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of `database`."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create(self, database: str) -> str:
        """Create an empty `database` and return its URL."""
        self._psql(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run `sql` as the superuser."""
        self._psql(sql, database)

    def _psql(self, sql: str, database: str = "postgres") -> None:
        psql = bin_dir() / "psql"
        subprocess.run(  # noqa: S603  # nosec B603  # fixed binary, argv list
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL after 15 s; the folder is removed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def kill(self) -> None:
        """Stop the server at once, as a crash would (SIGKILL by PID); `restart` brings it back."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, timeout: float = 30.0) -> None:
        """Start the server again on the same port and folder (after `kill` or `stop`)."""
        self.process = _spawn(self.folder, self.port, self.log)
        _wait_ready(self, timeout)


@dataclass(frozen=True)
class RunAs:
    """Who PostgreSQL runs as: this user when not root, else `nobody` (Popen's arguments)."""

    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None

    @classmethod
    def unprivileged(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        entry = pwd.getpwnam(UNPRIVILEGED)
        return cls(entry.pw_uid, entry.pw_gid, [])


def _spawn(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    data = folder / "data"
    # Stale after a SIGKILL: PostgreSQL checks the PID in it and starts anyway, but be plain.
    (data / "postmaster.pid").unlink(missing_ok=True)
    who = RunAs.unprivileged()
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603  # nosec B603  # fixed binary, argv list
            [str(bin_dir() / "postgres"), "-D", str(data), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}",
             "-c", "fsync=off", "-c", "max_connections=50"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            user=who.user, group=who.group, extra_groups=who.extra_groups,
        )  # fmt: skip


def _wait_ready(server: Postgres, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    isready = bin_dir() / "pg_isready"
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        done = subprocess.run(  # noqa: S603  # nosec B603  # fixed binary, argv list
            [str(isready), "-h", "127.0.0.1", "-p", str(server.port), "-U", SUPERUSER],
            capture_output=True, check=False, timeout=10,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-1500:] if server.log.exists() else ""
    server.stop()
    raise ToolkitError(f"PostgreSQL did not start on port {server.port}:\n{tail}")


def start_postgres(timeout: float = 60.0) -> Postgres:
    """initdb a temporary cluster (trust auth, 127.0.0.1 only) and start it on a free port."""
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    # The server (nobody, when run as root) must reach its data folder.
    os.chmod(folder, 0o755)  # noqa: S103  # nosec B103
    who = RunAs.unprivileged()
    if who.user is not None and who.group is not None:
        os.chown(folder, who.user, who.group)
    log = folder / "postgres.log"
    initdb = subprocess.run(  # noqa: S603  # nosec B603  # fixed binary, argv list
        [str(bin_dir() / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER,
         "--auth=trust", "--encoding=UTF8", "--no-sync"],
        capture_output=True, check=False, timeout=120,
        user=who.user, group=who.group, extra_groups=who.extra_groups,
    )  # fmt: skip
    if initdb.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise ToolkitError(f"initdb failed: {initdb.stderr.decode(errors='replace')[-800:]}")
    server = Postgres(port=free_port(), folder=folder, log=log)
    server.process = _spawn(folder, server.port, log)
    _wait_ready(server, timeout)
    return server
