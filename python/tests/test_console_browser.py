"""The web console (`/console`) in a real browser: headless Chromium from Debian's `chromium`
and `chromium-driver`, driven through WebDriver (Selenium), against the real admin on a fresh
database (live_admin.py) with real workers.

Rafiki's quickstart from the browser alone: log in, upload a dataset and a model, create a
train job, watch its trials appear without reloading, open a trial's chart, deploy, predict
from the page, stop. Then: a second user cannot see the first one's private things, a form
with a forged CSRF token changes nothing, and the session cookie's flags.

A screenshot of each screen is written to `target/console-screenshots/` (or
`RAFIKI_CONSOLE_SCREENSHOTS`) for a reviewer to look at.

The tests skip without Chromium and its driver, unless `RAFIKI_TEST_BROWSER=1` (set by
scripts/test.sh, which installs both), where their absence fails.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest
import requests
from conftest import EXAMPLE_MODELS, REPO_ROOT
from live_admin import SUPERADMIN, new_user, wait_for

from rafiki.constants import TaskType, UserType

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SCREENSHOTS = Path(
    os.environ.get("RAFIKI_CONSOLE_SCREENSHOTS") or REPO_ROOT / "target" / "console-screenshots"
)
PASSWORD = "a-good-password"
# Generous: workers start a Python interpreter per trial on a busy 2-core machine.
TRAINING_TIMEOUT = 300


def _chromium():
    """The paths of Chromium and its WebDriver, or the reason the tests cannot run."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = "Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("RAFIKI_TEST_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _new_driver():
    browser, driver = _chromium()
    # Selenium must not look for (or download) a browser or a driver of its own.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        # Chromium's sandbox needs user namespaces it is not given when run as root in CI.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=driver)
    chrome = webdriver.Chrome(service=service, options=options)
    chrome.implicitly_wait(0)
    return chrome


@pytest.fixture
def browser():
    chrome = _new_driver()
    try:
        yield chrome
    finally:
        chrome.quit()


def shot(chrome, name):
    """Saves a screenshot of the whole page as `<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = chrome.execute_script("return document.documentElement.scrollHeight")
    chrome.set_window_size(1280, max(900, min(int(height) + 40, 4000)))
    chrome.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    chrome.set_window_size(1280, 1000)


def wait(chrome, condition, timeout=30, message=""):
    return WebDriverWait(chrome, timeout, poll_frequency=0.2).until(lambda d: condition(d), message)


def page_text(chrome):
    return chrome.find_element(By.TAG_NAME, "body").text


def fill(chrome, field_id, value):
    field = chrome.find_element(By.ID, field_id)
    field.clear()
    field.send_keys(value)


def log_in(chrome, admin_url, email, password=PASSWORD):
    chrome.get(f"{admin_url}/console/login")
    fill(chrome, "email", email)
    fill(chrome, "password", password)
    chrome.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(chrome, lambda d: "/console/login" not in d.current_url, message="login")


def choose(chrome, field_id, value):
    """Sets a field that may be a `<select>` or a text input (with suggestions)."""
    field = chrome.find_element(By.ID, field_id)
    if field.tag_name == "select":
        Select(field).select_by_value(value)
    else:
        fill(chrome, field_id, value)


@contextlib.contextmanager
def _static_site(root):
    """Serves the files of `root` on another site than the admin's (`localhost`, where the
    admin is 127.0.0.1): yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def submit(form):
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_the_session_cookie_is_http_only_and_strict_and_forged_forms_change_nothing(
    browser, superadmin, admin_url, example_datasets, tmp_path
):
    (dev, email) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    task = TaskType.TABULAR_CLASSIFICATION
    kept = dev.create_dataset("kept", task, example_datasets[task]["train"])

    # A browser asking for / is sent to the console, which asks it to log in.
    browser.get(f"{admin_url}/")
    wait(browser, lambda d: "/console/login" in d.current_url, message="redirect to login")
    shot(browser, "01-login")
    log_in(browser, admin_url, email)
    assert browser.current_url.rstrip("/").endswith("/console")
    shot(browser, "02-home")

    cookies = {c["name"]: c for c in browser.get_cookies()}
    session = cookies["rafiki_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/console"
    # Scripts of the page cannot read it.
    assert "rafiki_session" not in browser.execute_script("return document.cookie")

    # A form whose CSRF token was tampered with is refused and changes nothing.
    browser.get(f"{admin_url}/console/datasets")
    form = browser.find_element(By.ID, "dataset-upload")
    browser.find_element(By.ID, "name").send_keys("forged")
    choose(browser, "task", task)
    browser.find_element(By.ID, "dataset").send_keys(example_datasets[task]["val"])
    browser.execute_script(
        "arguments[0].querySelector('input[name=csrf]').value = 'ab'.repeat(32)", form
    )
    # Without the script's upload (the plain form), so the refusal page is the browser's page.
    browser.execute_script("arguments[0].removeAttribute('data-progress')", form)
    submit(form)
    wait(browser, lambda d: "not sent from a page of this console" in page_text(d))
    assert [d["name"] for d in dev.get_datasets()] == ["kept"]

    # Another site's page that posts to the console: a form that deletes the dataset. The
    # browser does not send the SameSite=Strict cookie with it, and the admin would refuse
    # its Origin anyway: the dataset stays. (localhost and 127.0.0.1 are different sites.)
    attack = tmp_path / "attack.html"
    target = f"{admin_url}/console/datasets/{kept['id']}/delete"
    attack.write_text(
        f'<form id="f" method="post" action="{target}">'
        '<input name="csrf" value="00"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    with _static_site(tmp_path) as site:
        browser.get(f"{site}/attack.html")
        wait(browser, lambda d: d.current_url.startswith(admin_url), message="form sent")
    assert "Log in to Rafiki" in page_text(browser) or "not sent from a page" in page_text(browser)
    assert [d["id"] for d in dev.get_datasets()] == [kept["id"]]
    # The session itself is unharmed: the user is still logged in.
    browser.get(f"{admin_url}/console/datasets")
    assert "kept" in page_text(browser)
