"""Running the relay: one process, or N worker processes sharing one listening socket.

``threshold cloud run --workers N`` (N > 1, PostgreSQL only) makes this process a
supervisor: it creates the relay key and migrates the database once, opens the listening
socket, and starts N workers (``python -m cloud.serve``), each handed the socket's file
descriptor: the kernel gives each incoming connection to one of the processes waiting in
``accept``, so the workers share the load without a proxy in front. A worker that dies is
started again. The workers hold no state of their own (it is all in the database), so any
of them may serve any request, and a load balancer in front of several machines running
this is the same picture one level up.

With ``metrics_port`` the supervisor serves the workers' summed ingest metrics on
``127.0.0.1:<port>/metrics`` (``prometheus_client``'s multiprocess mode, in a temporary
directory it owns); a single process serves its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from cloud.metrics import MULTIPROC_ENV, metrics_app
from cloud.relay import Relay, RelayServer, load_or_create_relay_key, relay_id_of
from cloud.remote_config import load_remote_config
from cloud.storage import Backend, StorageConfig, StorageConfigError, load_config, open_storage

log = logging.getLogger("threshold.relay.serve")
READY_LINE = "worker ready"
WORKER_START_S = 60.0
WORKER_STOP_S = 15.0
MAX_WORKERS = 64


async def _until_stopped(seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    else:
        await stop.wait()


async def run_relay(
    directory: Path,
    host: str,
    port: int,
    *,
    config: Path | None = None,
    workers: int = 1,
    metrics_port: int | None = None,
    seconds: float = 0,
    announce: Callable[[str], None] = print,
) -> None:
    storage = load_config(directory, config)
    remote = load_remote_config(directory, config)
    if not 1 <= workers <= MAX_WORKERS:
        raise StorageConfigError(f"--workers is 1 to {MAX_WORKERS}")
    if remote is not None and workers != 1:
        # Each gateway's tunnel lives in one process; a browser's connection must reach that
        # process, which N workers accepting on one socket cannot promise.
        raise StorageConfigError("[remote] (the SNI front) runs in a single relay process")
    if workers == 1:
        server = RelayServer(Relay(directory, storage=storage, remote=remote))
        try:
            url = await server.start(host, port, metrics_port=metrics_port)
            announce(f"relay {server.relay.relay_id} listening on {url}")
            if server.relay.front is not None:
                announce(f"SNI front on port {server.relay.front.port}")
            if metrics_port is not None:
                announce(f"metrics on http://127.0.0.1:{server.metrics_port}/metrics")
            await _until_stopped(seconds)
        finally:
            await server.stop()
        return
    if storage.backend is not Backend.POSTGRESQL:
        raise StorageConfigError(
            '--workers needs the PostgreSQL backend ([storage] backend = "postgresql" in '
            "relay.toml); a SQLite relay is one process"
        )
    supervisor = Supervisor(directory, storage, config, workers, metrics_port)
    try:
        url = await supervisor.start(host, port)
        announce(f"relay {supervisor.relay_id} listening on {url} ({workers} worker processes)")
        if supervisor.metrics_port:
            announce(f"metrics on http://127.0.0.1:{supervisor.metrics_port}/metrics")
        watch = asyncio.create_task(supervisor.keep_running())
        try:
            await _until_stopped(seconds)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
    finally:
        await supervisor.stop()


class Supervisor:
    """N worker processes on one listening socket; restarts a worker that dies."""

    def __init__(
        self,
        directory: Path,
        storage: StorageConfig,
        config: Path | None,
        workers: int,
        metrics_port: int | None,
    ) -> None:
        self.directory = directory
        self.storage = storage
        self.config = config
        self.count = workers
        self.requested_metrics_port = metrics_port
        self.metrics_port = 0
        self.relay_id = ""
        self.workers: list[asyncio.subprocess.Process] = []
        self._sock: socket.socket | None = None
        self._metrics_dir: Path | None = None
        self._metrics_runner: web.AppRunner | None = None
        self._stopping = False

    async def start(self, host: str, port: int) -> str:
        # Done once here, not raced by N workers: the key's first creation and migrations.
        self.directory.mkdir(parents=True, exist_ok=True)
        self.relay_id = relay_id_of(bytes(load_or_create_relay_key(self.directory).verify_key))
        await (await open_storage(self.storage)).close()
        self._sock = socket.create_server((host, port), backlog=1024)
        self._sock.set_inheritable(True)
        if self.requested_metrics_port is not None:
            self._metrics_dir = Path(tempfile.mkdtemp(prefix="threshold-relay-metrics-"))
            self._metrics_runner = web.AppRunner(metrics_app(self._metrics_dir), access_log=None)
            await self._metrics_runner.setup()
            site = web.TCPSite(self._metrics_runner, "127.0.0.1", self.requested_metrics_port)
            await site.start()
            assert site._server is not None
            bound = getattr(site._server, "sockets", None) or []
            self.metrics_port = int(bound[0].getsockname()[1])
        self.workers = list(await asyncio.gather(*(self._spawn() for _ in range(self.count))))
        bound_host, bound_port = self._sock.getsockname()[:2]
        return f"http://{bound_host}:{bound_port}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        assert self._sock is not None
        fd = self._sock.fileno()
        argv = [sys.executable, "-m", "cloud.serve", "--dir", str(self.directory), "--fd", str(fd)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        env = dict(os.environ)
        if self._metrics_dir is not None:
            env[MULTIPROC_ENV] = str(self._metrics_dir)
        proc = await asyncio.create_subprocess_exec(
            *argv, pass_fds=(fd,), env=env, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), WORKER_START_S)
        except TimeoutError:
            line = b""
        if line.decode(errors="replace").strip() != READY_LINE:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise StorageConfigError(f"a relay worker did not start (exit {proc.returncode})")
        return proc

    async def keep_running(self) -> None:
        """Start a worker again when one exits (its requests in flight are lost, as when any
        server process dies; the gateways retry)."""
        while not self._stopping:
            waits = {asyncio.create_task(w.wait()): i for i, w in enumerate(self.workers)}
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
            for task in done:
                index = waits[task]
                if self._stopping:
                    return
                log.warning(
                    "relay worker %d exited (%s); starting another",
                    self.workers[index].pid,
                    self.workers[index].returncode,
                )
                self.workers[index] = await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        for proc in self.workers:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                await asyncio.wait_for(proc.wait(), WORKER_STOP_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        if self._sock is not None:
            self._sock.close()
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)


async def _worker(directory: Path, fd: int, config: Path | None) -> None:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    server = RelayServer(Relay(directory, storage=load_config(directory, config)))
    try:
        await server.start(sock=sock)
        print(READY_LINE, flush=True)
        await _until_stopped(0)
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """A worker of ``threshold cloud run --workers N`` (started by the supervisor only)."""
    parser = argparse.ArgumentParser(prog="python -m cloud.serve")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    config = None if args.config is None else Path(args.config)
    asyncio.run(_worker(Path(args.dir), args.fd, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
