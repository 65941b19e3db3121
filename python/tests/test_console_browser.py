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

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_MODELS, REPO_ROOT
from live_admin import SUPERADMIN, new_user, wait_for

from rafiki.constants import TaskType, UserType

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
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
    reason = (
        "Debian's chromium and chromium-driver are needed "
        "(apt-get install chromium chromium-driver)"
    )
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
    """Saves a screenshot of the whole page, from its top, as `<name>.png` (Chromium's own
    capture beyond the window, through the DevTools protocol)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = chrome.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000)}
    png = chrome.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


def wait(chrome, condition, timeout=30, message=""):
    """Waits for `condition`; on a timeout, the page's screenshot is kept as
    `failed-<message>.png` and its text goes into the failure."""
    try:
        return WebDriverWait(chrome, timeout, poll_frequency=0.2).until(condition, message)
    except TimeoutException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() else "-" for c in message)
        chrome.save_screenshot(str(SCREENSHOTS / f"failed-{name}.png"))
        pytest.fail(
            f"timed out waiting for {message} at {chrome.current_url}:\n{page_text(chrome)}"
        )


def page_text(chrome):
    """The page's text; a page replaced while it is read (a navigation just starting) is read
    again."""
    for _ in range(50):
        try:
            return chrome.find_element(By.TAG_NAME, "body").text
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.1)
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
    # By keyboard alone: the email field has the focus, Tab goes to the password, Enter sends.
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "email"
    focused.send_keys(email, Keys.TAB)
    browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait(browser, lambda d: "/console/login" not in d.current_url, message="login by keyboard")
    assert browser.current_url.rstrip("/").endswith("/console")
    # The first Tab reaches the skip link, the next ones the navigation.
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.text == "Skip to content"
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.text == "Rafiki"
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
        wait(
            browser,
            lambda d: (
                d.current_url.startswith(admin_url)
                and ("Log in to Rafiki" in page_text(d) or "not sent from a page" in page_text(d))
            ),
            message="the cross-site form refused",
        )
    assert [d["id"] for d in dev.get_datasets()] == [kept["id"]]
    # The session itself is unharmed: the user is still logged in.
    browser.get(f"{admin_url}/console/datasets")
    assert "kept" in page_text(browser)


def confirm(chrome):
    """Accepts the confirmation question a `data-confirm` form asks."""
    wait(chrome, _alert, message="confirmation asked").accept()


def _alert(chrome):
    try:
        return chrome.switch_to.alert
    except NoAlertPresentException:
        return None


def upload(chrome, form_id, fields, files):
    """Fills and sends an upload form (with its progress bar), and waits for the page it
    leads to."""
    form = chrome.find_element(By.ID, form_id)
    for field_id, value in fields.items():
        choose(chrome, field_id, value)
    for field_id, path in files.items():
        chrome.find_element(By.ID, field_id).send_keys(str(path))
    # A new page (the same address, maybe) has none of the old one's variables.
    chrome.execute_script("window.rafikiOldPage = true")
    submit(form)
    wait(
        chrome,
        lambda d: d.execute_script(
            "return window.rafikiOldPage === undefined && document.readyState === 'complete'"
        ),
        message=f"{form_id} sent",
    )


def test_the_quickstart_from_the_browser_alone(superadmin, admin_url, example_datasets, tmp_path):
    """Upload, train, watch, deploy, predict, stop: Rafiki's quickstart with nothing but the
    console, then what another user may see of it."""
    if not os.environ.get("RAFIKI_PYTHON"):
        pytest.skip("RAFIKI_PYTHON (the interpreter workers run models with) is not set")
    (dev, email) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    task = TaskType.TABULAR_CLASSIFICATION
    paths = example_datasets[task]
    chrome = _new_driver()
    try:
        log_in(chrome, admin_url, email)

        # Datasets: two files, each sent with the progress bar.
        chrome.get(f"{admin_url}/console/datasets")
        for name in ("wine-train", "wine-val"):
            source = paths["train" if name.endswith("train") else "val"]
            # What the progress bar showed, kept across the page change the upload ends with.
            chrome.execute_script(
                """const bar = document.querySelector('#dataset-upload progress.upload-progress');
                sessionStorage.removeItem('rafikiProgress');
                new MutationObserver(() => sessionStorage.setItem(
                  'rafikiProgress', bar.value + ' ' + !bar.parentElement.hidden
                )).observe(bar, {attributes: true});"""
            )
            upload(chrome, "dataset-upload", {"name": name, "task": task}, {"dataset": source})
            assert "The dataset was uploaded." in page_text(chrome)
            shown = chrome.execute_script("return sessionStorage.getItem('rafikiProgress')")
            assert shown == "100 true", shown
        assert sorted(d["name"] for d in dev.get_datasets()) == ["wine-train", "wine-val"]
        shot(chrome, "03-datasets")

        # A private model.
        chrome.get(f"{admin_url}/console/models")
        model_file = EXAMPLE_MODELS / "tabular_classification" / "SkMlpClf.py"
        upload(
            chrome,
            "model-upload",
            {
                "model-name": "mlp",
                "model-task": task,
                "model-class": "SkMlpClf",
                "model-access": "PRIVATE",
            },
            {"model-file": model_file},
        )
        [model] = dev.get_available_models(task)
        assert model["name"] == "mlp"
        shot(chrome, "04-models")
        chrome.find_element(By.LINK_TEXT, "mlp").click()
        wait(chrome, lambda d: "SkMlpClf" in page_text(d), message="model page")
        shot(chrome, "05-model")

        # A train job: first its task, then the rest.
        chrome.get(f"{admin_url}/console/train_jobs/new")
        fill(chrome, "pick-task", task)
        submit(chrome.find_element(By.ID, "pick-task").find_element(By.XPATH, "./ancestor::form"))
        wait(chrome, lambda d: d.find_elements(By.ID, "app"), message="the job form")
        fill(chrome, "app", "wine")
        Select(chrome.find_element(By.ID, "train_dataset_id")).select_by_visible_text(
            next(o.text for o in _options(chrome, "train_dataset_id") if "wine-train" in o.text)
        )
        Select(chrome.find_element(By.ID, "val_dataset_id")).select_by_visible_text(
            next(o.text for o in _options(chrome, "val_dataset_id") if "wine-val" in o.text)
        )
        chrome.find_element(By.ID, f"model-{model['id']}").click()
        fill(chrome, "MODEL_TRIAL_COUNT", "3")
        fill(chrome, "train_args", json.dumps({"target": "target"}))
        shot(chrome, "06-train-job-new")
        submit(chrome.find_element(By.ID, "app").find_element(By.XPATH, "./ancestor::form"))
        wait(chrome, lambda d: "/console/train_jobs/wine/1" in d.current_url, message="job page")
        job_url = chrome.current_url.split("?")[0]

        # Its trials appear while the page stays open: the live section refreshes itself.
        chrome.execute_script("window.rafikiNotReloaded = true")
        wait(
            chrome,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#live a[href*='/console/trials/']")) >= 1
            ),
            timeout=TRAINING_TIMEOUT,
            message="a trial on the job page",
        )
        wait(
            chrome,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#live [data-running='false']"),
            timeout=TRAINING_TIMEOUT,
            message="the job's end on the page",
        )
        assert chrome.execute_script("return window.rafikiNotReloaded === true")
        trials = dev.get_trials_of_train_job("wine")
        assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials), trials
        links = chrome.find_elements(By.CSS_SELECTOR, "#live a[href*='/console/trials/']")
        assert len(links) == 3
        chrome.get(job_url)
        shot(chrome, "07-train-job")

        # A trial's page, with its model's loss plot drawn.
        best = dev.get_best_trials_of_train_job("wine", max_count=1)[0]
        chrome.get(f"{admin_url}/console/trials/{best['id']}")
        assert "mlp" in page_text(chrome)
        charts = chrome.find_elements(By.CSS_SELECTOR, "figure svg")
        assert charts, "the trial's plot is drawn"
        shot(chrome, "08-trial")

        # Deploy from the job's page, then predict from the inference job's page.
        chrome.get(job_url)
        deploy = chrome.find_element(By.XPATH, "//button[contains(., 'Deploy')]")
        deploy.click()
        wait(chrome, lambda d: "/console/inference_jobs/wine/1" in d.current_url, message="deploy")
        inference_url = chrome.current_url.split("?")[0]
        wait_for(
            lambda: dev.get_running_inference_job("wine"),
            lambda j: j["status"] == "RUNNING",
            timeout=TRAINING_TIMEOUT,
        )
        chrome.get(inference_url)
        with open(paths["val"]) as f:
            header = f.readline().strip().split(",")
            row = f.readline().strip().split(",")
        query = {k: float(v) for (k, v) in zip(header, row) if k != "target"}
        fill(chrome, "query", json.dumps(query))
        submit(chrome.find_element(By.ID, "query").find_element(By.XPATH, "./ancestor::form"))
        answer = wait(
            chrome, lambda d: d.find_elements(By.CSS_SELECTOR, "pre.answer"), message="answer"
        )[0]
        prediction = json.loads(answer.text)
        probabilities = prediction["prediction"] if isinstance(prediction, dict) else prediction
        assert len(probabilities) == 3 and abs(sum(probabilities) - 1) < 1e-6, prediction
        shot(chrome, "09-inference-job")

        # Stop it, after the confirmation question.
        submit(chrome.find_element(By.XPATH, "//form[@data-confirm][contains(@action, '/stop')]"))
        confirm(chrome)
        wait(chrome, lambda d: "/stop" not in d.current_url, message="stopped")
        assert [j["status"] for j in dev.get_inference_jobs_of_app("wine")] == ["STOPPED"]
        chrome.get(f"{admin_url}/console/train_jobs")
        assert "wine" in page_text(chrome)
        shot(chrome, "10-train-jobs")
        chrome.get(f"{admin_url}/console/inference_jobs")
        shot(chrome, "11-inference-jobs")

        # Another user sees none of it, and is refused it by address.
        (_, other) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
        chrome.delete_all_cookies()
        log_in(chrome, admin_url, other)
        for page in ("datasets", "models", "train_jobs", "inference_jobs"):
            chrome.get(f"{admin_url}/console/{page}")
            text = page_text(chrome)
            assert "wine" not in text and "mlp" not in text, (page, text)
        for path in (
            "/console/train_jobs/wine/1",
            f"/console/trials/{best['id']}",
            f"/console/models/{model['id']}",
        ):
            chrome.get(f"{admin_url}{path}")
            text = page_text(chrome)
            assert "Not Found" in text or "Forbidden" in text, (path, text)
            assert "SkMlpClf" not in text and "target" not in text

        # The superadmin's users screen.
        chrome.delete_all_cookies()
        log_in(chrome, admin_url, SUPERADMIN[0], SUPERADMIN[1])
        chrome.get(f"{admin_url}/console/users")
        assert email in page_text(chrome)
        shot(chrome, "12-users")
    finally:
        chrome.quit()


def _options(chrome, select_id):
    return Select(chrome.find_element(By.ID, select_id)).options
