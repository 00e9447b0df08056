"""Prometheus metrics (docs/operations.md, "Metrics and health"): after a courier's visit and
a refused request, a real scrape of the real endpoint shows what happened, and nothing that
names a person, a ticket or a session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.clients.lan import ApiProblem
from tests.support.cli import run_cli
from tests.support.service import WAIT, running_harness, set_config


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
        http.get(url) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_visit_and_a_refusal_show_in_the_metrics(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw") as h:
        url = h.gateway.metrics_url
        assert url is not None
        assert url.startswith("http://127.0.0.1:")  # localhost by default
        before = await scrape(url)
        assert value(before, "threshold_access_grants_total", door="front", purpose="delivery") == 0

        t = h.ticket(package_codes=("A",))
        opened = await h.open(t, package_code="A")
        session = opened.body["session"]
        await h.done(t, session)
        with pytest.raises(ApiProblem) as refused:
            await h.open(t, package_code="A")
        assert refused.value.code == "uses_exhausted"

        after = await scrape(url)
        assert value(after, "threshold_access_grants_total", door="front", purpose="delivery") == 1
        assert (
            value(
                after,
                "threshold_access_refusals_total",
                door="front",
                code="uses_exhausted",
                audited="true",
            )
            == 1
        )
        assert (
            value(after, "threshold_api_answers_total", route="/v1/access", status="201", code="ok")
            == 1
        )
        assert (
            value(
                after,
                "threshold_api_answers_total",
                route="/v1/access",
                status="403",
                code="uses_exhausted",
            )
            == 1
        )
        # the unlock went through the metered driver and was timed
        assert (
            value(
                after,
                "threshold_lock_command_seconds_count",
                door="front",
                command="unlock",
                outcome="ok",
            )
            == 1
        )
        assert value(after, "threshold_grant_overhead_seconds_count") == 1
        assert value(after, "threshold_lock_battery_percent", door="front") > 0
        assert value(after, "threshold_audit_entries") > value(before, "threshold_audit_entries")
        assert value(after, "threshold_camera_configured") == 0

        text = repr(after)
        for secret in (t.jti, session, t.token[:40]):
            assert secret not in text


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw", settings={("metrics", "enabled"): "false"}) as h:
        assert h.gateway.metrics_url is None


async def test_threshold_status_in_words(tmp_path: Path) -> None:
    config = tmp_path / "gw" / "threshold.toml"
    missing = await asyncio.to_thread(run_cli, "status", "--config", str(tmp_path / "no.toml"))
    assert missing.returncode == 2
    async with running_harness(tmp_path / "gw") as h:
        assert h.gateway.metrics_url is not None
        port = h.gateway.metrics_url.rsplit(":", 1)[1].split("/")[0]
        set_config(config, "metrics", "bind", f'"127.0.0.1:{port}"')
        t = h.ticket(package_codes=("A",), uses=2)
        opened = await h.open(t, package_code="A")
        await h.done(t, opened.body["session"])
        healthy = await asyncio.to_thread(run_cli, "status", "--config", str(config))
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "ok   gateway gw-test: running" in healthy.stdout
        assert "ok   lock front: battery 84%" in healthy.stdout
        assert healthy.stdout.rstrip().endswith("all well")

        # The lock's batteries run down; the next visit reads it: the owner is told.
        h.sim.lock.set_battery(3, critical=True)
        opened = await h.open(t, package_code="A")
        await h.done(t, opened.body["session"])
        low = await asyncio.to_thread(run_cli, "status", "--config", str(config))
        assert low.returncode == 1, low.stdout
        assert "FIX  lock front: batteries critical -> replace them today" in low.stdout
    gone = await asyncio.to_thread(run_cli, "status", "--config", str(config))
    assert gone.returncode == 1
    assert "not running" in gone.stdout
