"""Without the GStreamer RTSP server, a test that needs it FAILS with the install command."""

from __future__ import annotations

import pytest

from tests.support import rtsp


def test_missing_server_fails_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtsp, "SYSTEM_PYTHON", "/nonexistent/python3")
    monkeypatch.setattr(rtsp, "rtsp_server_problem", rtsp.rtsp_server_problem.__wrapped__)
    with pytest.raises(pytest.fail.Exception) as failure:
        rtsp.require_rtsp_server()
    assert "apt-get install gir1.2-gst-rtsp-server-1.0" in str(failure.value)
    with pytest.raises(rtsp.RtspServerMissing):
        rtsp.RtspTestServer().start()
