"""The relay's ingest metrics for Prometheus, served on a separate localhost port.

``threshold_relay_entries_ingested_total``, ``threshold_relay_batches_total`` (accepted
uploads), ``threshold_relay_refusals_total{code}`` (every upload answered with a problem,
by its ``code``: the witness findings, ``unauthorized``, ``malformed``...),
``threshold_relay_alarms_total{code}`` (refusals that are alarms for the owner, uploads and
receipts) and ``threshold_relay_upload_seconds`` (a histogram of the upload route's latency,
from the request's arrival to its answer).

Each :class:`IngestMetrics` has a registry of its own, so several relays in one process (the
tests) do not mix. With ``--workers N`` each worker writes its samples to the shared
directory of ``prometheus_client``'s multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
the supervisor before it starts the workers), and the supervisor serves their sum.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.entries = Counter(
            "threshold_relay_entries_ingested",
            "Log entries the relay accepted and stored.",
            registry=self.registry,
        )
        self.batches = Counter(
            "threshold_relay_batches",
            "Upload batches the relay accepted.",
            registry=self.registry,
        )
        self.refusals = Counter(
            "threshold_relay_refusals",
            "Uploads answered with a problem, by its code.",
            ["code"],
            registry=self.registry,
        )
        self.alarms = Counter(
            "threshold_relay_alarms",
            "Witness alarms raised (rewrite, truncation, equivocation...), by code.",
            ["code"],
            registry=self.registry,
        )
        self.upload_seconds = Histogram(
            "threshold_relay_upload_seconds",
            "Time from an upload's arrival to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def multiprocess_exposition(directory: Path) -> bytes:
    """The sum over every worker that wrote to ``directory`` (their multiprocess dir)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def metrics_app(source: IngestMetrics | Path) -> web.Application:
    """``GET /metrics``: one relay's registry, or the sum of the workers writing to a dir."""

    expose = (
        source.exposition
        if isinstance(source, IngestMetrics)
        else functools.partial(multiprocess_exposition, source)
    )

    async def serve(request: web.Request) -> web.Response:
        # The workers' sum reads their files: off the event loop.
        body = await asyncio.to_thread(expose)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app
