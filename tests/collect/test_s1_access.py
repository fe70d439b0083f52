"""An unapproved Planetary Computer account: the S1 token endpoint answers 403 on a real loopback server, and
collect's S1 signer turns it into one line naming the account and PC_SDK_SUBSCRIPTION_KEY."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seco.collect.s1catalog import S1SasSigner
from seco.radiometry.s1 import S1RuleError

HREF = ("https://sentinel1euwestrtc.blob.core.windows.net/sentinel1-grd-rtc/GRD/2023/6/28/IW/DV/"
        "S1A_IW_GRDH_1SDV_20230628T210705_20230628T210730_049191_05EA4D_21D1/measurement/iw-vv.rtc.tiff")


@pytest.fixture
def token_server() -> Iterator[tuple[str, list]]:
    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append((self.path, self.headers.get("Ocp-Apim-Subscription-Key")))
            if self.headers.get("Ocp-Apim-Subscription-Key") == "approved":
                body = b'{"msft:expiry": "2099-01-01T00:00:00Z", "token": "sv=1&sig=ok"}'
                self.send_response(200)
            else:
                body = b'{"detail": "Forbidden"}'
                self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/api/sas/v1/token", seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_refused_token_names_the_account_and_variable(token_server, monkeypatch) -> None:
    url, seen = token_server
    monkeypatch.delenv("PC_SDK_SUBSCRIPTION_KEY", raising=False)
    with pytest.raises(S1RuleError) as e:
        S1SasSigner(token_url=url, timeout=5)(HREF)
    msg = str(e.value)
    assert "\n" not in msg and "PC_SDK_SUBSCRIPTION_KEY" in msg and "account" in msg and "403" in msg
    assert seen[-1][0].endswith("/sentinel1euwestrtc/sentinel1-grd-rtc")


def test_the_key_from_the_environment_is_sent(token_server, monkeypatch) -> None:
    url, seen = token_server
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "approved")
    signed = S1SasSigner(token_url=url, timeout=5)(HREF)
    assert signed.endswith("?sv=1&sig=ok") and seen[-1][1] == "approved"
