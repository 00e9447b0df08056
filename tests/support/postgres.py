"""A throw-away PostgreSQL cluster for tests and the relay benchmark.

Debian's ``postgresql`` package provides the server binaries (``/usr/lib/postgresql/*/bin``);
a missing package is an error with the install hint, never a skip. The cluster lives in a
temporary directory, listens on a free port on 127.0.0.1 (and a Unix socket inside that
directory), and is stopped and deleted by :meth:`Cluster.stop`. PostgreSQL refuses to run as
root, so as root the server binaries run as the unprivileged ``postgres`` user, who is given
the directory.

The superuser ``threshold`` logs in over TCP with a password (SCRAM): the relay's DSN and
password file are exercised for real. Durability is off (``fsync``, ``synchronous_commit``,
``full_page_writes``), which is what a throw-away cluster is for; the benchmark can turn it
back on.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries not found: install Debian's postgresql package "
    "(apt-get install -y postgresql, or scripts/setup.sh --test)"
)
SUPERUSER = "threshold"
RUN_AS = "postgres"


class PostgresMissing(RuntimeError):
    """The server binaries are not installed."""


def server_bin() -> Path:
    """The newest installed ``/usr/lib/postgresql/<major>/bin`` (or ``$THRESHOLD_PG_BIN``)."""
    override = os.environ.get("THRESHOLD_PG_BIN")
    candidates = [override] if override else glob.glob("/usr/lib/postgresql/*/bin")

    def major(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else 0

    for found in sorted(candidates, key=major, reverse=True):
        if (Path(found) / "initdb").exists() and (Path(found) / "pg_ctl").exists():
            return Path(found)
    raise PostgresMissing(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One running throw-away cluster. ``dsn(db)`` names a database in it."""

    root: Path
    port: int
    password: str
    bin_dir: Path
    _databases: int = field(default=0)
    #: Stops the cluster if the process that started it dies without :meth:`stop` (a killed
    #: test run), so no server outlives its test.
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def write_password_file(self, path: Path) -> Path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        return path

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the Unix socket as the superuser; returns psql's unaligned output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, prefix: str = "t") -> str:
        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}_{secrets.token_hex(3)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        """Stop the server and delete its directory; a second call does nothing."""
        if not self.root.exists():
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError, RuntimeError):
            _run_server(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"],
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        if self.watchdog is not None:
            # It sees the directory gone and exits within its poll interval.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(timeout=5)


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", RUN_AS, "--", *argv]


def _run_server(argv: list[str], timeout: float) -> None:
    result = subprocess.run(
        _as_server_user(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


# Runs beside the test process: once that process is gone (killed, timed out) and the
# cluster's directory still exists, stop the server at once and delete the directory.
_WATCHDOG = """
import os, shutil, subprocess, sys, time
parent, root, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
while os.path.exists(root):
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        subprocess.run(stop, capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)
        break
    time.sleep(0.2)
"""


def _start_watchdog(root: Path, bin_dir: Path) -> subprocess.Popen[bytes]:
    stop = _as_server_user(
        [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]
    )
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(root), *stop],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the test's process group does not reach it
    )


def start_cluster(*, durable: bool = False, settings: dict[str, str] | None = None) -> Cluster:
    """initdb in a fresh temp dir and ``pg_ctl start`` on a free port; waits until it accepts."""
    bin_dir = server_bin()
    root = Path(tempfile.mkdtemp(prefix="threshold-pg-"))
    password = secrets.token_urlsafe(18)
    try:
        (root / "sock").mkdir()
        pwfile = root / "initpw"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PostgresMissing(INSTALL_HINT + f" (no {RUN_AS!r} user)") from None
            for path in (root, root / "sock", pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run_server(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            timeout=120,
        )
        pwfile.unlink()
        port = free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(root / "sock"),
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not durable:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        options.update(settings or {})
        opts = " ".join(f"-c {name}={value}" for name, value in options.items())
        _run_server(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Cluster(
        root=root,
        port=port,
        password=password,
        bin_dir=bin_dir,
        watchdog=_start_watchdog(root, bin_dir),
    )
