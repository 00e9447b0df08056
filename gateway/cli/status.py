"""``threshold status``: the running gateway's health in words (docs/operations.md).

Scrapes the gateway's own metrics endpoint (``[metrics] bind``) and prints one line per
subject: ``ok`` or ``FIX`` with what to do. Exit 0 when all is well, 1 when something needs
attention or the gateway does not answer, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.errors import UsageError

TIMEOUT_S = 5.0


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _status(args: argparse.Namespace) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.app.config import load
    from gateway.app.health import SampleKey, assess
    from gateway.app.wiring import CHECKPOINT_EVERY_S

    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    config = load(path)
    if not config.metrics.enabled:
        raise UsageError("[metrics] enabled = false: threshold status reads the metrics")
    host = config.metrics.host
    if ipaddress.ip_address(host).is_unspecified if _is_ip(host) else False:
        host = "127.0.0.1"  # bound to every address: ask the local one
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{config.metrics.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            text = response.read(8 * 1024 * 1024).decode()
    except (urllib.error.URLError, OSError, ValueError):
        print(f"FIX  gateway {config.gateway_id}: not running (nothing answers at {url})")
        print("     -> systemctl start threshold, or threshold run --config " + str(path))
        return 1
    samples: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    findings = assess(
        samples,
        # Paced uploads sign a checkpoint every slot and no other (docs/privacy.md).
        checkpoint_every_s=(
            config.cloud.interval_s
            if config.cloud.url and config.cloud.paced
            else CHECKPOINT_EVERY_S
        ),
        sync_interval_s=config.cloud.interval_s if config.cloud.url else None,
        clock_skew_s=config.policy.clock_skew_s,
    )
    print(f"ok   gateway {config.gateway_id}: running")
    for finding in findings:
        print(finding.line())
    bad = sum(not f.ok for f in findings)
    print(f"{bad} thing(s) need attention" if bad else "all well")
    return 1 if bad else 0


def register(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="the running gateway's health in words (exit 1 when something needs attention)",
    )
    status.add_argument("--config", required=True, help="path to threshold.toml")
    status.set_defaults(handler=_status)
