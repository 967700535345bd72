"""Webhooks against real receivers on loopback: signed deliveries of job and enrollment events,
a receiver that times out (attempts logged, back-off, endpoint disabled), re-enable and redelivery."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bio_gateway.webhooks import signing
from bio_testing.gateway import user


class Receiver:
    """A real HTTP server on 127.0.0.1: /ok answers 204, /slow sleeps past the client timeout while
    ``slow`` is set."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.slow = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/slow" and outer.slow:
                    time.sleep(1.5)
                outer.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout_s: float = 20.0, path: str | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = [c for c in self.calls if path is None or c["path"] == path]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.calls)} deliveries, expected {n}: {self.calls}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def hooks_gw(gateway_factory):
    return gateway_factory(webhook_timeout_s=0.4, webhook_max_attempts=2, webhook_disable_after=2,
                           webhook_poll_interval_s=0.1)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buf, "PNG")
    return buf.getvalue()


def _normalize_job(gw, auth) -> str:
    r = gw.post("/api/v1/faces/jobs/normalize", files={"file": ("x.png", _png(), "image/png")}, headers=auth)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _documented_verify():
    """The receiver-side snippet of the README's security section, executed as written (the signing
    module's docstring holds the same code)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("Verify it like this", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    doc = signing.__doc__.split("::", 1)[1]
    assert [x.strip() for x in code.strip().splitlines()] == [x.strip() for x in doc.strip().splitlines()]
    scope: dict[str, Any] = {}
    exec(code, scope)
    return scope["verify"]


def test_job_event_delivered_signed_once(hooks_gw, receiver) -> None:
    auth = user(hooks_gw, "hooks@example.org")
    r = hooks_gw.post("/api/v1/webhooks", json={"url": f"{receiver.url}/ok", "events": ["job.succeeded"]},
                      headers=auth)
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and "secret" not in hooks_gw.get(
        f"/api/v1/webhooks/{hook['id']}", headers=auth).json()
    job_id = _normalize_job(hooks_gw, auth)
    call = receiver.wait_for(1)[0]
    body = json.loads(call["body"])
    assert body["type"] == "job.succeeded" and body["data"]["job_id"] == job_id
    assert body["data"]["service"] == "face_recognition" and call["headers"]["Bio-Event-Type"] == "job.succeeded"
    header = call["headers"][signing.HEADER]
    assert _documented_verify()(hook["secret"], call["body"], header)
    assert not _documented_verify()(hook["secret"], call["body"] + b" ", header)  # any change breaks it
    assert not signing.verify(hook["secret"].encode(), call["body"], header, now=time.time() + 3600)  # replay
    time.sleep(0.5)
    assert len(receiver.calls) == 1  # polled many times, delivered once
    deliveries = hooks_gw.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth).json()
    assert deliveries["total"] == 1 and deliveries["items"][0]["status"] == "succeeded"
    assert deliveries["items"][0]["attempt_log"][0]["status_code"] == 204


def test_timeouts_are_retried_logged_and_disable_the_endpoint(hooks_gw, receiver) -> None:
    auth = user(hooks_gw, "slow@example.org")
    hook = hooks_gw.post("/api/v1/webhooks", json={"url": f"{receiver.url}/slow", "events": ["job.succeeded"]},
                         headers=auth).json()
    _normalize_job(hooks_gw, auth)
    _normalize_job(hooks_gw, auth)

    def state() -> dict:
        return hooks_gw.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth).json()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (state()["total"] == 2 and
                                               all(d["status"] == "failed" for d in state()["items"])):
        time.sleep(0.2)
    items = state()["items"]
    assert [d["status"] for d in items] == ["failed", "failed"], items
    for d in items:  # two attempts each, 2 s apart (exponential back-off), each logged as a timeout
        log = d["attempt_log"]
        assert len(log) == 2 and all("timed out" in a["error"] for a in log)
        assert (time.mktime(time.strptime(log[1]["at"][:19], "%Y-%m-%dT%H:%M:%S")) -
                time.mktime(time.strptime(log[0]["at"][:19], "%Y-%m-%dT%H:%M:%S"))) >= 1
    endpoint = hooks_gw.get(f"/api/v1/webhooks/{hook['id']}", headers=auth).json()
    assert endpoint["active"] is False and "2 deliveries in a row failed" in endpoint["disabled_reason"]

    receiver.slow = False
    assert hooks_gw.post(f"/api/v1/webhooks/{hook['id']}/enable", headers=auth).json()["active"] is True
    r = hooks_gw.post(f"/api/v1/webhooks/deliveries/{items[0]['id']}/redeliver", headers=auth)
    assert r.status_code == 202, r.text
    receiver.wait_for(1, path="/slow", timeout_s=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and state()["items"][0]["status"] != "succeeded":
        time.sleep(0.1)
    assert {d["id"]: d["status"] for d in state()["items"]}[items[0]["id"]] == "succeeded"


def test_registration_is_validated_and_private_to_the_account(gateway_factory, receiver) -> None:
    gw = gateway_factory(webhook_allow_private=False)
    alice, bob = user(gw, "a@example.org"), user(gw, "b@example.org")
    bad = [({"url": "ftp://example.org/x", "events": ["*"]}, "invalid_webhook_url"),
           ({"url": f"{receiver.url}/ok", "events": ["job.succeeded"]}, "webhook_url_not_public"),
           ({"url": "http://10.1.2.3/hook", "events": ["*"]}, "webhook_url_not_public"),
           ({"url": "https://example.org/hook", "events": ["job.exploded"]}, "invalid_event_types")]
    for body, code in bad:
        r = gw.post("/api/v1/webhooks", json=body, headers=alice)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    assert gw.get("/api/v1/webhooks", headers=alice).json()["total"] == 0

    open_gw = gateway_factory(webhook_allow_private=True)
    carol, dave = user(open_gw, "c@example.org"), user(open_gw, "d@example.org")
    hook = open_gw.post("/api/v1/webhooks", json={"url": f"{receiver.url}/ok", "events": ["*"]}, headers=carol)
    assert hook.status_code == 201
    hid = hook.json()["id"]
    assert open_gw.get(f"/api/v1/webhooks/{hid}", headers=dave).status_code == 404
    assert open_gw.delete(f"/api/v1/webhooks/{hid}", headers=dave).status_code == 404
    assert open_gw.delete(f"/api/v1/webhooks/{hid}", headers=carol).status_code == 204
    assert open_gw.get("/api/v1/webhooks", headers={}).status_code == 401
    assert bob  # the first gateway's second account exists for isolation symmetry


@pytest.mark.data
def test_enrollment_and_no_match_events(hooks_gw, receiver, data_dir: Path) -> None:
    auth = user(hooks_gw, "faces@example.org")
    hooks_gw.post("/api/v1/webhooks", json={"url": f"{receiver.url}/ok",
                                             "events": ["person.enrolled", "identify.no_match",
                                                        "unknown_face.stored"]}, headers=auth)
    eid = hooks_gw.post("/api/v1/faces/events", json={"name": "door"}, headers=auth).json()["id"]
    photos = data_dir / "faces" / "face_recognition" / "test_images"
    r = hooks_gw.post(f"/api/v1/faces/events/{eid}/people", headers=auth, data={"name": "Barack Obama"},
                      files=[("files", ("o.jpg", (photos / "obama.jpg").read_bytes(), "image/jpeg"))])
    assert r.status_code == 201, r.text
    enrolled = json.loads(receiver.wait_for(1)[0]["body"])
    assert enrolled["type"] == "person.enrolled" and enrolled["data"]["person_id"] == r.json()["id"]
    ident = hooks_gw.post(f"/api/v1/faces/events/{eid}/identify", headers=auth,
                          files={"file": ("b.jpg", (photos / "biden.jpg").read_bytes(), "image/jpeg")})
    assert ident.status_code == 200 and ident.json()["faces"][0]["passed"] is False
    expected = {"identify.no_match"} | ({"unknown_face.stored"} if ident.json()["faces"][0]["unknown_id"] else set())
    calls = receiver.wait_for(1 + len(expected))
    assert {json.loads(c["body"])["type"] for c in calls[1:]} == expected
