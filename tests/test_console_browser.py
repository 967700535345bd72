"""The operator console in a real headless Chromium (Debian's `chromium`, driven by Playwright),
against the platform started as `bio-platform run` (embedded mode, SQLite, in-process jobs) on a
free loopback port. Screenshots of every page go to reports/console/ (1280 px and phone width)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.data, pytest.mark.timeout(240)]

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("BIO_TEST_CHROMIUM", "/usr/bin/chromium")
REPORTS = Path(__file__).resolve().parent.parent / "reports" / "console"
ADMIN, PASSWORD = "admin@example.org", "correct horse battery"
WIDE, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


def _missing(why: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests cannot run in CI: {why}")
    pytest.skip(f"{why} (install Debian's chromium: `make test-tools`)")


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bio-platform run` as its own process, with an admin account from the environment."""
    tmp = tmp_path_factory.mktemp("console")
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIO_")}
    env.update(BIO_VAR_DIR=str(tmp / "var"), BIO_GATEWAY_ADMIN_EMAIL=ADMIN, BIO_GATEWAY_ADMIN_PASSWORD=PASSWORD,
               BIO_LOG_JSON="false", BIO_GATEWAY_RATE_LIMIT_LOGIN="100/minute")
    log_path = tmp / "platform.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bio_gateway.cli", "run", "--port", str(port)],
                                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while not _ready(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the platform did not start: {log_path.read_text()[-3000:]}")
                time.sleep(0.3)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"playwright is not installed ({exc})")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Console:
    """A logged-in browser tab with helpers for screenshots and the console's forms."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.console_errors: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: d.accept())  # destructive forms ask first

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str, *, phone: bool = False) -> None:
        REPORTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(REPORTS / f"{name}.png"), full_page=True)
        if phone:
            self.page.set_viewport_size(PHONE)
            self.page.screenshot(path=str(REPORTS / f"{name}-phone.png"), full_page=True)
            self.page.set_viewport_size(WIDE)

    def login(self, email: str = ADMIN, password: str = PASSWORD) -> None:
        self.go("/console/login")
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()

    def flash(self) -> str:  # the one-time message after a post
        return self.page.locator(".flash").first.inner_text()


@pytest.fixture
def console(browser: Any, platform: str) -> Iterator[Console]:
    context = browser.new_context(viewport=WIDE)
    c = Console(context.new_page(), platform)
    c.login()
    c.page.wait_for_url(re.compile(r"/console/events$"))
    yield c
    context.close()
    assert not [e for e in c.console_errors if "Content Security Policy" in e], c.console_errors


def faces(data_dir: Path, *parts: str) -> str:
    return str(data_dir.joinpath("faces", "face_recognition", *parts))


def test_login_cookies_csrf_and_csp(browser, platform):
    context = browser.new_context(viewport=WIDE)
    c = Console(context.new_page(), platform)
    c.go("/console/events")  # not logged in: sent to the login page, and back afterwards
    assert "/console/login?next=%2Fconsole%2Fevents" in c.page.url
    c.shot("login", phone=True)
    c.page.get_by_label("E-mail").fill(ADMIN)
    c.page.get_by_label("Password").fill("wrong password")
    c.page.get_by_role("button", name="Log in").click()
    assert "Wrong e-mail or password" in c.page.locator("[role=alert]").inner_text()
    c.page.get_by_label("Password").fill(PASSWORD)
    with c.page.expect_response(re.compile(r"/console/events$")) as landed:
        c.page.get_by_role("button", name="Log in").click()
    csp = landed.value.all_headers()["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    cookies = {k["name"]: k for k in context.cookies()}
    for name in ("bio_console_access", "bio_console_refresh", "bio_console_csrf"):
        assert cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Strict" and cookies[name]["path"] == "/console"
    assert c.page.evaluate("document.cookie") == ""  # nothing readable by scripts
    # The tokens are the API's own: the access token works as a bearer token on the public API.
    me = httpx.get(f"{platform}/api/v1/auth/me",
                   headers={"Authorization": f"Bearer {cookies['bio_console_access']['value']}"})
    assert me.status_code == 200 and me.json()["email"] == ADMIN
    # A post without the form's CSRF token (a forged cross-site form) changes nothing.
    forged = context.request.post(f"{platform}/console/events", form={"name": "forged"}, max_redirects=0)
    c.go("/console/events")
    assert forged.status == 403 and "forged" not in c.page.content()
    # Logging out revokes the refresh token at the API.
    c.page.get_by_role("button", name="Log out").click()
    c.page.wait_for_url(re.compile(r"/console/login"))
    spent = {"refresh_token": cookies["bio_console_refresh"]["value"]}
    assert httpx.post(f"{platform}/api/v1/auth/refresh", json=spent).status_code == 401
    context.close()


IMAGES_LOADED = "(sel) => [...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)"


def _identify(console: Console, event_url: str, photo: str, *, threshold: str = "", queue: bool = True) -> None:
    page = console.page
    page.goto(event_url + "/identify")
    page.get_by_label("Photo", exact=True).set_input_files(photo)
    page.get_by_label("Threshold").fill(threshold)
    page.get_by_label("Queue unknown faces").set_checked(queue)
    page.get_by_role("button", name="Identify").click()


def _select_first_crop(console: Console) -> None:
    console.page.get_by_role("link", name="review it").click()
    console.page.locator("ul.crops input[name=ids]").first.check()


def _event_with_two_people(console: Console, data_dir: Path) -> str:
    page = console.page
    page.get_by_label("Name", exact=True).fill("Gala dinner")
    page.get_by_role("button", name="Create event").click()
    page.wait_for_url(re.compile(r"/console/events/[^/]+$"))
    event_url = page.url
    assert "Event “Gala dinner” created" in console.flash()
    for name, photos in (("Barack Obama", ["obama/obama.jpg", "obama/obama2.jpg"]),
                         ("Joe Biden", ["biden/biden.jpg", "biden/biden2.jpg"])):
        page.goto(event_url)
        page.get_by_label("Name", exact=True).first.fill(name)
        page.get_by_label("Photos (one face each)").set_input_files(
            [faces(data_dir, "knn_examples", "train", p) for p in photos])
        page.get_by_role("button", name="Enroll").click()
        page.wait_for_url(re.compile(r"/people/[^/]+$"))
        assert f"{name} enrolled with 2 photos" in console.flash()
    # the person page shows the stored photos (fetched through the console from the API)
    page.wait_for_function(IMAGES_LOADED, arg="ul.thumbs img", timeout=15_000)  # 2 photos, each displayed
    assert page.locator("ul.thumbs img").count() == 2
    console.shot("person", phone=True)
    page.goto(event_url)
    assert page.get_by_test_id("person-count").inner_text() == "2"
    console.shot("event", phone=True)
    console.go("/console/events")
    console.shot("events")
    return event_url


def test_events_people_identify_and_unknown_faces(console, data_dir):
    page = console.page
    event_url = _event_with_two_people(console, data_dir)
    # a photo with both people (and a third, unknown face, not queued this time)
    _identify(console, event_url, faces(data_dir, "knn_examples", "test", "obama_and_biden.jpg"), queue=False)
    assert sorted(page.get_by_test_id("face-match").all_inner_texts()) == ["Barack Obama", "Joe Biden"]
    assert page.locator("svg.overlay rect.box.match").count() == 2
    assert page.get_by_role("link", name="review it").count() == 0
    console.shot("identify", phone=True)

    # a stranger is queued as an unknown face ...
    _identify(console, event_url, faces(data_dir, "knn_examples", "test", "alex_lacamoire1.jpg"))
    assert page.get_by_test_id("face-unknown").count() == 1
    assert page.locator("svg.overlay rect.box.unknown").count() == 1
    page.get_by_role("link", name="review it").click()
    assert page.locator("ul.crops img").count() == 1
    page.wait_for_function(IMAGES_LOADED, arg="ul.crops img", timeout=15_000)
    console.shot("unknowns", phone=True)
    # ... confirmed as a new person (keyboard only: select, type the name, submit) ...
    page.get_by_label("Select all on this page").focus()
    page.keyboard.press("Space")
    page.get_by_label("New person's name").fill("Alex Lacamoire")
    page.get_by_label("New person's name").press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/unknowns$"))
    assert "1 face confirmed" in console.flash() and page.locator("ul.crops img").count() == 0
    # ... and recognised from another photo next time
    other_photo = faces(data_dir, "knn_examples", "train", "alex_lacamoire", "img1.jpg")
    _identify(console, event_url, other_photo)
    assert page.get_by_test_id("face-match").all_inner_texts() == ["Alex Lacamoire"]
    # with a threshold nobody passes, that face is queued; it is added to the existing person
    _identify(console, event_url, other_photo, threshold="0.05")
    assert page.get_by_test_id("face-unknown").count() == 1
    _select_first_crop(console)
    page.get_by_label("Existing person").select_option(label="Alex Lacamoire")
    page.get_by_role("button", name="Add to this person").click()
    assert "1 face confirmed" in console.flash()
    page.goto(event_url)
    page.get_by_role("link", name="Alex Lacamoire").click()
    assert page.locator("ul.thumbs li").count() == 2
    # another stranger's face is discarded from the queue
    _identify(console, event_url, faces(data_dir, "examples", "lin-manuel-miranda.png"))
    _select_first_crop(console)
    page.get_by_role("button", name="Discard selected").click()
    assert "1 face discarded" in console.flash() and page.locator("ul.crops img").count() == 0
    _edit_person_and_settings(console, event_url)


def _edit_person_and_settings(console: Console, event_url: str) -> None:
    page = console.page
    # rename and delete a photo of a person
    page.goto(event_url)
    page.get_by_role("link", name="Joe Biden").click()
    page.get_by_label("Name", exact=True).fill("Joseph Biden")
    page.get_by_role("button", name="Rename").click()
    assert "Renamed to Joseph Biden" in console.flash()
    page.get_by_role("button", name="Delete photo").first.click()
    assert "Photo deleted" in console.flash() and page.locator("ul.thumbs img").count() == 1

    # the event's settings: a new threshold is saved and shown
    page.goto(event_url)
    page.get_by_label("Match threshold (distance)").fill("0.5")
    page.get_by_role("button", name="Save settings").click()
    assert "Settings saved" in console.flash()
    assert page.get_by_label("Match threshold (distance)").input_value() == "0.5"  # read back from the API


def test_verify_two_photos_side_by_side(console, data_dir):
    console.go("/console/verify")
    page = console.page
    page.get_by_label("First photo").set_input_files(faces(data_dir, "test_images", "obama.jpg"))
    page.get_by_label("Second photo").set_input_files(faces(data_dir, "test_images", "obama2.jpg"))
    page.get_by_role("button", name="Verify").click()
    assert page.get_by_test_id("verdict").inner_text() == "Same person"
    assert page.locator("svg.overlay").count() == 2
    console.shot("verify", phone=True)


def test_fingerprints_enroll_identify_and_minutiae(console, data_dir):
    db1 = data_dir / "fingerprints" / "fvc2002" / "DB1_B"
    page = console.page
    for subject, finger in (("alice", "101"), ("bob", "102")):
        console.go("/console/fingerprints")
        page.get_by_label("Subject", exact=True).fill(subject)
        page.get_by_label("Finger", exact=True).select_option(label="right index")
        page.get_by_label("Impressions (a few prints of the same finger)").set_input_files(
            [str(db1 / f"{finger}_{i}.tif") for i in (1, 2)])
        page.get_by_role("button", name="Enroll").click()
        enrolled = page.get_by_test_id("enrolled")
        assert f"{subject}, right index: 2 enrolled, 0 refused" in enrolled.inner_text()
        scores = [int(q) for q in enrolled.locator(".quality").all_inner_texts()]
        assert len(scores) == 2 and all(0 < q <= 100 for q in scores)
    console.shot("fingerprints", phone=True)
    page.get_by_label("Print", exact=True).set_input_files(str(db1 / "101_5.tif"))
    page.get_by_role("button", name="Identify").click()
    assert page.get_by_test_id("fp-candidates").locator("tbody tr td").first.inner_text() == "alice"
    assert "bob" not in page.get_by_test_id("fp-candidates").inner_text()
    assert page.locator("svg.print .minutia").count() > 10
    console.shot("fingerprint-identify", phone=True)
    # a batch of prints as a job: the job page follows its progress live and then shows each print
    console.go("/console/fingerprints")
    page.get_by_label("Prints (processed as a background job)").set_input_files(
        [str(db1 / f"103_{i}.tif") for i in (1, 2, 3, 4)])
    page.get_by_role("button", name="Start job").click()
    page.wait_for_url(re.compile(r"/console/jobs/fingerprint/[^/]+$"))
    first_status = page.get_by_test_id("job-status").inner_text()
    items = page.get_by_test_id("job-items")
    items.wait_for(timeout=90_000)  # polled by htmx, the page reloads itself once the job is done
    assert first_status in ("pending", "running"), first_status
    assert items.locator("tbody tr").count() == 4
    console.shot("job")
    console.go("/console/fingerprints")
    page.locator("table a[href*='/console/fingerprints/outputs/']").first.click()
    count = int(page.get_by_test_id("minutiae-count").inner_text())
    assert page.locator("svg.print .minutia").count() == count > 10
    assert page.evaluate("() => [...document.images].every(i => i.complete)")
    console.shot("fingerprint-output")


def test_contour_job_progress_overlay_and_download(console, data_dir):
    console.go("/console/contours")
    page = console.page
    sample = data_dir / "face_parsing" / "celebamask-hq" / "maskgan_samples" / "0.jpg"
    page.get_by_label("Face photo").set_input_files(str(sample))
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/console/contours/[^/]+$"))
    # the page polls the job and reloads with the overlay once it has finished
    overlay = page.get_by_test_id("contour-overlay")
    overlay.wait_for(timeout=60_000)
    page.wait_for_function(IMAGES_LOADED, arg="img")
    box_svg, box_img = overlay.locator("img.over").bounding_box(), overlay.locator("img").first.bounding_box()
    assert box_svg and box_img and abs(box_svg["width"] - box_img["width"]) < 2  # drawn over the face
    console.shot("contour-job", phone=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="SVG").click()
    assert download.value.suggested_filename.endswith(".svg") and "<svg" in Path(download.value.path()).read_text()
    console.go("/console/contours")
    console.shot("contours")
    console.go("/console/jobs")
    assert page.get_by_test_id("job-status").first.inner_text() == "succeeded"
    console.shot("jobs", phone=True)


def test_api_keys_and_admin_accounts(console, platform):
    console.go("/console/keys")
    page = console.page
    page.get_by_label("Name (what will use it)").fill("door scanner")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("Key").input_value()
    console.shot("keys")
    # the key is a real API key of the platform
    assert httpx.get(f"{platform}/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 200
    console.go("/console/keys")  # shown once only
    assert key not in page.content()
    page.get_by_role("button", name="Revoke").click()
    assert "Key revoked" in console.flash() and httpx.get(f"{platform}/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401

    # a second account registered through the API shows up for the admin, who can disable it
    assert httpx.post(f"{platform}/api/v1/auth/register",
                      json={"email": "operator@example.org", "password": PASSWORD}).status_code == 201
    page.get_by_role("link", name="Accounts").click()
    row = page.locator("tr", has_text="operator@example.org")
    row.get_by_role("button", name="Disable").click()
    assert "operator@example.org: user, disabled" in console.flash()
    audit_route = httpx.get(f"{platform}/openapi.json").json()["paths"].get("/api/v1/audit")
    assert (page.get_by_role("link", name="Audit").count() == 1) == bool(audit_route)
    console.shot("accounts", phone=True)
    if audit_route:  # the audit trail records what this admin did through the console
        page.get_by_role("link", name="Audit").click()
        assert page.locator("table tbody tr").count() > 0
        console.shot("audit", phone=True)
        page.get_by_role("link", name="Accounts").click()
        row = page.locator("tr", has_text="operator@example.org")
    row.get_by_role("button", name="Enable").click()
    assert "operator@example.org: user, active" in console.flash()


def test_users_see_no_admin_pages(browser, platform):
    httpx.post(f"{platform}/api/v1/auth/register", json={"email": "user@example.org", "password": PASSWORD})
    context = browser.new_context(viewport=WIDE)
    c = Console(context.new_page(), platform)
    c.login("user@example.org")
    c.page.wait_for_url(re.compile(r"/console/events$"))
    assert c.page.get_by_role("link", name="Accounts").count() == 0
    r = c.page.goto(f"{platform}/console/admin/accounts")
    assert r is not None and r.status == 403 and "admin role required" in c.page.content()
    context.close()
