"""The web Action Center in a real browser: Debian's headless Chromium driven by Selenium.

Nothing here downloads a browser or a driver: the paths are Debian's
(/usr/bin/chromium, /usr/bin/chromedriver, from the ``chromium`` and
``chromium-driver`` packages) and Selenium Manager is kept offline. Without them
the test is skipped with the reason, unless ``AIRGATE_REQUIRE_BROWSER=1`` (CI sets
it in .ci/run), which makes a missing browser a failure.

``AIRGATE_SCREENSHOTS=1`` also writes docs/screenshots/pending.png and
action-panel.png, the README's pictures (off by default: CI must not touch the tree).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server_helpers import serve
from web_helpers import CONFIG, POLICY, SUBJECT, alert, submit

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if not missing:
        return
    why = (f"browser tests need {', '.join(missing)}: apt-get install chromium"
           " chromium-driver")
    if os.environ.get("AIRGATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"AIRGATE_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """The app served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    with serve(tmp_path, policy=POLICY, config=CONFIG) as srv:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(srv.client.app, log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield srv, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,900", "--force-device-scale-factor=1",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    chrome.implicitly_wait(0)
    try:
        yield chrome
    finally:
        chrome.quit()


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 (reading it is what raises)


def _click(driver: Any, by: str, value: str) -> None:
    """Click what loads a new page, and wait until the old one is gone (a click returns
    before the navigation it starts has finished)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element("tag name", "html")
    driver.find_element(by, value).click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def _flash(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flash"))


def _sign_in(driver: Any, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/signin")
    driver.find_element(By.ID, "token").send_keys(token)
    _click(driver, By.CSS_SELECTOR, "form button[type=submit].primary")
    assert driver.current_url == f"{base}/actions/pending"


def _sign_out(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    _click(driver, By.CSS_SELECTOR, "form.signout button")


def _shoot(driver: Any, name: str) -> None:
    if os.environ.get("AIRGATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / name))


@pytest.mark.parametrize("required", [True, False])
def test_a_missing_browser_skips_or_fails_when_ci_requires_it(
        monkeypatch: pytest.MonkeyPatch, required: bool) -> None:
    import sys

    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    if required:
        monkeypatch.setenv("AIRGATE_REQUIRE_BROWSER", "1")
    else:
        monkeypatch.delenv("AIRGATE_REQUIRE_BROWSER", raising=False)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="browser tests need /nonexistent/chromium: apt-get"
                                      " install chromium chromium-driver"):
        _need_browser()


@pytest.mark.slow
def test_the_action_center_in_chromium(live: tuple[Any, str], driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    srv, base = live
    ids = submit(srv, alert("alert-1", message="m-1", device="d1"))
    srv.advance(600)
    submit(srv, alert("alert-2", subject="Invoice 4471 overdue", message="m-2", device="d2"))
    email = ids["soft_delete_email"]

    # A user without the role sees Approve refused, with the reason.
    _sign_in(driver, base, srv.token("alice"))
    driver.get(f"{base}/actions/pending?panel={email}")
    _click(driver, By.ID, "approve")
    assert ("alice holds active-remediation; approving soft_delete_email needs one of:"
            " search-and-purge") in _flash(driver)
    assert srv.ctx.queue().get(email).status == "pending"
    _sign_out(driver)

    # The approver signs in and sees the pending soft delete; the <script> subject is text.
    _sign_in(driver, base, srv.token("dave"))
    _no_alert(driver)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert f"evil@example.net: {SUBJECT}" in body
    scripts = driver.find_elements(By.TAG_NAME, "script")
    assert [s.get_attribute("src") for s in scripts] == [f"{base}/static/app.js"]
    assert driver.find_element(By.ID, "pending-total").text == "6"
    _shoot(driver, "pending.png")

    # The live counts follow a new submission without a reload (app.js, under the CSP).
    submit(srv, alert("alert-3", subject="Your mailbox is full", message="m-3", device="d3"))
    WebDriverWait(driver, 15).until(
        lambda d: d.find_element(By.ID, "pending-total").text == "9")
    assert not [e for e in driver.get_log("browser")
                if "Content Security Policy" in e["message"]]

    # The action panel: rejecting without a reason is refused.
    _click(driver, By.LINK_TEXT, str(email))
    panel = driver.find_element(By.ID, "action-panel")
    assert "Soft delete email" in panel.text and SUBJECT in panel.text
    _no_alert(driver)
    _shoot(driver, "action-panel.png")
    _click(driver, By.ID, "reject")
    assert "Rejecting needs a reason" in _flash(driver)
    assert srv.ctx.queue().get(email).status == "pending"

    # Approve; History shows it completed.
    _click(driver, By.ID, "approve")
    assert "approved and carried out: completed" in _flash(driver)
    _click(driver, By.CSS_SELECTOR, "nav.tabs a[href$='/actions/history']")
    row = driver.find_element(By.LINK_TEXT, str(email)).find_element(By.XPATH, "./../..")
    assert "completed" in row.text and "dave" in row.text

    # Undo (an email action's undo is the opposite move) and see it.
    _click(driver, By.LINK_TEXT, str(email))
    _click(driver, By.ID, "undo")
    flash = _flash(driver)
    assert f"action {email} (soft_delete_email" in flash and "undone by a new action" in flash
    old = srv.ctx.queue().get(email)
    assert old.status == "superseded" and old.superseded_by is not None
    _click(driver, By.CSS_SELECTOR, "nav.tabs a[href$='/actions/history']")
    row = driver.find_element(By.LINK_TEXT, str(email)).find_element(By.XPATH, "./../..")
    assert "superseded" in row.text and f"superseded by action {old.superseded_by}" in row.text
    _click(driver, By.CSS_SELECTOR, "nav.tabs a[href$='/actions/pending']")
    row = driver.find_element(By.LINK_TEXT, str(old.superseded_by)).find_element(
        By.XPATH, "./../..")
    assert "Move to inbox" in row.text and f"changed from action {email}" in row.text
    _no_alert(driver)
