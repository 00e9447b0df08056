"""The gateway's health in words for a person: what works, what does not, what to do.

``threshold status`` scrapes the gateway's own metrics endpoint and hands the samples here;
the verdicts are the same numbers Prometheus alerts would use, so the operator's dashboard and
the person at the terminal never disagree. Pure: samples in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: One Prometheus sample: metric name and its sorted labels.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]

#: Codes after which a lock will not work until a person acts.
_LOCK_NEEDS_A_PERSON = {
    "lock_not_found": "the lock is out of range or its batteries are dead",
    "lock_not_authorized": "the lock no longer knows this gateway: pair it again",
    "no_bluetooth_adapter": "the gateway has no working Bluetooth adapter",
    "lock_jammed": "the bolt jammed: check the door and turn the lock by hand once",
}
LOW_BATTERY_PERCENT = 20
COSIGNATURE_STALE_S = 86_400


@dataclass(frozen=True, slots=True)
class Finding:
    subject: str
    ok: bool
    text: str
    advice: str | None = None

    def line(self) -> str:
        mark = "ok  " if self.ok else "FIX "
        advice = f" -> {self.advice}" if self.advice else ""
        return f"{mark} {self.subject}: {self.text}{advice}"


def _by_label(samples: Mapping[SampleKey, float], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (metric, labels), value in samples.items():
        if metric == name:
            found = dict(labels).get(label)
            if found is not None:
                out[found] = out.get(found, 0.0) + value
    return out


def _one(samples: Mapping[SampleKey, float], name: str) -> float | None:
    return samples.get((name, ()))


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} days"


def assess(
    samples: Mapping[SampleKey, float],
    *,
    checkpoint_every_s: float,
    sync_interval_s: float | None,
    clock_skew_s: float = 120.0,
) -> list[Finding]:
    """Findings, worst first within each subject; ``sync_interval_s`` None: no relay;
    ``clock_skew_s`` the ticket skew (``[policy] clock_skew_s``)."""
    out: list[Finding] = []

    if _one(samples, "threshold_camera_configured") == 0:
        out.append(
            Finding("camera", True, "none configured (tickets that require one are refused)")
        )
    live = _by_label(samples, "threshold_camera_live", "camera")
    fps = _by_label(samples, "threshold_camera_fps", "camera")
    for name in sorted(live):
        # One camera is "camera"; several are each named.
        subject = "camera" if len(live) == 1 else f"camera {name}"
        if live[name] == 1:
            out.append(Finding(subject, True, f"live, {fps.get(name, 0.0):.0f} frames/s"))
        else:
            out.append(
                Finding(
                    subject,
                    False,
                    "not live: entries that require the camera are refused",
                    "check the camera's power, network and RTSP URL (threshold camera check)",
                )
            )

    batteries = _by_label(samples, "threshold_lock_battery_percent", "door")
    critical = _by_label(samples, "threshold_lock_battery_critical", "door")
    errors: dict[tuple[str, str], float] = {}
    for (metric, labels), value in samples.items():
        if metric == "threshold_lock_errors_total" and value > 0:
            found = dict(labels)
            errors[(found.get("door", "?"), found.get("code", "?"))] = value
    doors = sorted(set(batteries) | set(critical) | {door for door, _ in errors})
    for door in doors:
        subject = f"lock {door}"
        blocking = [code for (d, code) in errors if d == door and code in _LOCK_NEEDS_A_PERSON]
        if blocking:
            code = blocking[0]
            out.append(Finding(subject, False, f"{code}: {_LOCK_NEEDS_A_PERSON[code]}"))
        elif critical.get(door) == 1:
            out.append(Finding(subject, False, "batteries critical", "replace them today"))
        elif door in batteries and batteries[door] < LOW_BATTERY_PERCENT:
            out.append(
                Finding(subject, False, f"battery {batteries[door]:.0f}%", "replace them soon")
            )
        else:
            battery = f"battery {batteries[door]:.0f}%" if door in batteries else "not read yet"
            other = sum(v for (d, _), v in errors.items() if d == door)
            extra = f", {other:.0f} link errors since start (retried)" if other else ""
            out.append(Finding(subject, True, f"{battery}{extra}"))

    alarms = sum(_by_label(samples, "threshold_alarms_total", "reason").values())
    if alarms:
        out.append(
            Finding(
                "alarms",
                False,
                f"{alarms:.0f} raised since start",
                "read them: threshold owner events",
            )
        )

    entries = _one(samples, "threshold_audit_entries")
    age = _one(samples, "threshold_checkpoint_age_seconds")
    if entries is None:
        out.append(Finding("audit log", False, "cannot be read", "check the disk and the database"))
    elif age is not None and age > 3 * checkpoint_every_s:
        out.append(
            Finding(
                "audit log",
                False,
                f"{entries:.0f} entries, newest checkpoint {age / 3600:.1f} h old",
                "the checkpoint job is failing: see the gateway's log",
            )
        )
    else:
        out.append(Finding("audit log", True, f"{entries:.0f} entries, checkpoints current"))

    ahead = _one(samples, "threshold_time_floor_ahead_seconds")
    if ahead is not None and ahead > clock_skew_s:
        out.append(
            Finding(
                "clock",
                False,
                f"the time floor is {_span(ahead)} ahead of the gateway's clock: every ticket "
                "but an emergency one is refused as clock_untrusted",
                "if the clock is right (check NTP: timedatectl), reset the floor with "
                "threshold owner clock reset; if not, fix the clock",
            )
        )
    elif ahead is not None:
        out.append(Finding("clock", True, "not behind the time floor"))

    if sync_interval_s is not None:
        last = _one(samples, "threshold_sync_last_success_age_seconds")
        backlog = _one(samples, "threshold_sync_backlog_entries") or 0.0
        limit = max(3 * sync_interval_s, 900.0)
        if last is None or last > limit:
            when = "never since start" if last is None else f"{last / 60:.0f} min ago"
            out.append(
                Finding(
                    "relay",
                    False,
                    f"last sync {when}, {backlog:.0f} entries waiting",
                    "the door still works offline; check the internet or the relay",
                )
            )
        else:
            out.append(Finding("relay", True, f"synced {last:.0f} s ago, {backlog:.0f} waiting"))
        queued = _one(samples, "threshold_sync_queued_entries")
        delay = _one(samples, "threshold_sync_queue_delay_seconds")
        if queued is not None and delay is not None:
            if _one(samples, "threshold_sync_queue_over_bound"):
                out.append(
                    Finding(
                        "upload queue",
                        False,
                        f"{queued:.0f} entries wait for an upload slot, the last for "
                        f"{_span(delay)}: past [cloud] queue_bound",
                        "nothing is lost (the log is local first) and uploads stay paced; "
                        "raise [cloud] slots if this is the new normal (docs/privacy.md)",
                    )
                )
            else:
                out.append(
                    Finding(
                        "upload queue",
                        True,
                        f"paced: {queued:.0f} entries queued, the last leaves within "
                        f"{_span(delay)}",
                    )
                )
        cosigned = _one(samples, "threshold_cosignature_age_seconds")
        if cosigned is not None and cosigned > COSIGNATURE_STALE_S:
            out.append(
                Finding(
                    "witness",
                    False,
                    f"newest cosignature {cosigned / 3600:.0f} h old",
                    "the relay is not cosigning: check it",
                )
            )
    return out
