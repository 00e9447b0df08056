"""The metrics endpoint: ``GET /metrics`` in Prometheus's text format, on its own port.

Its own aiohttp runner, apart from the LAN API: a scraper never takes an API connection or
admission slot, and the API's owner-only routes stay unreachable from it. The exposition is
rendered in a worker thread (it reads the database at scrape time), so a scrape never holds
the event loop that drives the locks.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


async def serve_metrics(
    registry: CollectorRegistry, host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Start serving ``registry``; the runner (``cleanup()`` to stop) and the bound port."""

    async def metrics(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port
