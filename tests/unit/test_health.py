"""``threshold status``'s verdicts (gateway.app.health), from samples as a scrape gives them."""

from __future__ import annotations

from gateway.app.health import Finding, SampleKey, assess


def samples(**values: float) -> dict[SampleKey, float]:
    out: dict[SampleKey, float] = {}
    for name, value in values.items():
        metric, _, labels = name.partition("__")
        pairs = tuple(
            sorted((k, v) for k, _, v in (p.partition("_is_") for p in labels.split("__") if p))
        )
        out[(metric, pairs)] = value
    return out


HEALTHY = {
    "threshold_camera_configured": 1,
    "threshold_camera_live__camera_is_camera": 1,
    "threshold_camera_fps__camera_is_camera": 15,
    "threshold_lock_battery_percent__door_is_front": 80,
    "threshold_lock_battery_critical__door_is_front": 0,
    "threshold_audit_entries": 40,
    "threshold_checkpoint_age_seconds": 30,
    "threshold_sync_last_success_age_seconds": 20,
    "threshold_sync_backlog_entries": 0,
}


def bad(findings: list[Finding]) -> list[str]:
    return [f.line() for f in findings if not f.ok]


def test_all_well() -> None:
    found = assess(samples(**HEALTHY), checkpoint_every_s=600, sync_interval_s=60)
    assert bad(found) == []
    assert [f.subject for f in found] == ["camera", "lock front", "audit log", "relay"]


def test_each_problem_is_named_with_what_to_do() -> None:
    sick = {
        **HEALTHY,
        "threshold_camera_live__camera_is_camera": 0,
        "threshold_lock_battery_percent__door_is_front": 12,
        "threshold_lock_errors_total__code_is_lock_not_authorized__door_is_back": 2,
        "threshold_alarms_total__reason_is_relock_failed": 1,
        "threshold_checkpoint_age_seconds": 4000,
        "threshold_sync_last_success_age_seconds": 7200,
        "threshold_cosignature_age_seconds": 200_000,
    }
    lines = bad(assess(samples(**sick), checkpoint_every_s=600, sync_interval_s=60))
    assert lines == [
        "FIX  camera: not live: entries that require the camera are refused -> check the "
        "camera's power, network and RTSP URL (threshold camera check)",
        "FIX  lock back: lock_not_authorized: the lock no longer knows this gateway: pair it again",
        "FIX  lock front: battery 12% -> replace them soon",
        "FIX  alarms: 1 raised since start -> read them: threshold owner events",
        "FIX  audit log: 40 entries, newest checkpoint 1.1 h old -> the checkpoint job is "
        "failing: see the gateway's log",
        "FIX  relay: last sync 120 min ago, 0 entries waiting -> the door still works offline; "
        "check the internet or the relay",
        "FIX  witness: newest cosignature 56 h old -> the relay is not cosigning: check it",
    ]


def test_several_cameras_are_each_named() -> None:
    cameras = {
        **HEALTHY,
        "threshold_camera_configured": 2,
        "threshold_camera_live__camera_is_porch": 1,
        "threshold_camera_fps__camera_is_porch": 15,
        "threshold_camera_live__camera_is_hall": 0,
        "threshold_camera_fps__camera_is_hall": 0,
    }
    del cameras["threshold_camera_live__camera_is_camera"]
    del cameras["threshold_camera_fps__camera_is_camera"]
    found = assess(samples(**cameras), checkpoint_every_s=600, sync_interval_s=60)
    assert [f.line() for f in found if f.subject.startswith("camera")] == [
        "FIX  camera hall: not live: entries that require the camera are refused -> check the "
        "camera's power, network and RTSP URL (threshold camera check)",
        "ok   camera porch: live, 15 frames/s",
    ]


def test_no_relay_configured_is_not_a_problem() -> None:
    healthy = dict(HEALTHY)
    del healthy["threshold_sync_last_success_age_seconds"]
    found = assess(samples(**healthy), checkpoint_every_s=600, sync_interval_s=None)
    assert "relay" not in [f.subject for f in found]
    assert bad(found) == []


def test_a_time_floor_far_ahead_of_the_clock_is_named_with_the_reset() -> None:
    """Issue 11, finding 1: a floor more than the skew ahead refuses every time-bound ticket;
    status says so, and how to reset it."""
    within = {**HEALTHY, "threshold_time_floor_ahead_seconds": 90}
    found = assess(samples(**within), checkpoint_every_s=600, sync_interval_s=60)
    assert bad(found) == []
    assert "ok   clock: not behind the time floor" in [f.line() for f in found]
    ahead = {**HEALTHY, "threshold_time_floor_ahead_seconds": 6540}
    lines = bad(assess(samples(**ahead), checkpoint_every_s=600, sync_interval_s=60))
    assert lines == [
        "FIX  clock: the time floor is 109 min ahead of the gateway's clock: every ticket but an "
        "emergency one is refused as clock_untrusted -> if the clock is right (check NTP: "
        "timedatectl), reset the floor with threshold owner clock reset; if not, fix the clock"
    ]
    # The skew is the configured one.
    lines = bad(
        assess(samples(**within), checkpoint_every_s=600, sync_interval_s=60, clock_skew_s=30)
    )
    assert len(lines) == 1
    assert lines[0].startswith("FIX  clock: the time floor is 90 s ahead")


def test_the_paced_upload_queue_shows_its_delay_and_its_bound() -> None:
    """``threshold status`` shows how long the queue of the paced upload makes entries wait
    (docs/privacy.md), and names a queue past ``[cloud] queue_bound``."""
    paced = {
        **HEALTHY,
        "threshold_sync_queued_entries": 7,
        "threshold_sync_queue_delay_seconds": 120,
        "threshold_sync_queue_over_bound": 0,
    }
    found = assess(samples(**paced), checkpoint_every_s=600, sync_interval_s=60)
    assert bad(found) == []
    queue = [f.line() for f in found if f.subject == "upload queue"]
    assert queue == ["ok   upload queue: paced: 7 entries queued, the last leaves within 2 min"]
    over = {**paced, "threshold_sync_queued_entries": 900, "threshold_sync_queue_over_bound": 1}
    over["threshold_sync_queue_delay_seconds"] = 13_500
    assert bad(assess(samples(**over), checkpoint_every_s=600, sync_interval_s=60)) == [
        "FIX  upload queue: 900 entries wait for an upload slot, the last for 3.8 h: past "
        "[cloud] queue_bound -> nothing is lost (the log is local first) and uploads stay "
        "paced; raise [cloud] slots if this is the new normal (docs/privacy.md)"
    ]
