"""``threshold run`` as a real process, for tests of what a process sees: signals, crashes,
open files and resident memory."""

from __future__ import annotations

import asyncio
import resource
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

READY = "ready at "


@asynccontextmanager
async def threshold_run(
    config: Path, log: Path, *, open_files: int | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Start ``threshold run`` (with at most ``open_files`` descriptors if given), wait for
    its ready line, yield the process and its URL; kill it at the end if still running."""

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            preexec_fn=limit_files,
        )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"threshold run exited early; see {log}")
                if READY in line:
                    url = line.split(READY, 1)[1].strip()
                    break
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
