"""The whole of Rafiki in containers, driven through Rafiki's own Python client.

Run by scripts/e2e-compose.sh against the admin that `docker-compose up` started (and by
scripts/e2e-stack.sh, E2E_BACKEND=swarm, against the one `docker stack deploy` started): trains an
example model (its workers are containers the admin launches), deploys the best trial (a
predictor and an inference worker, also containers), checks with the docker CLI how the
deployment's containers are isolated, queries the predictor from the host and through the
console's predict box (the admin's own way to it), checks that the `monitoring` profile's
Prometheus (E2E_PROMETHEUS_CONTAINER, when set) scraped the admin and the predictor, and stops
everything. Prints one line per step; exits non-zero on the first failure.
"""

import html
import json
import os
import re
import subprocess
import sys
import time
from urllib.parse import quote

import requests
from rafiki.client import Client


def wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"FAILED: {what} within {timeout} s")
        time.sleep(0.5)


def docker(*args):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False
    )


def inspect(*names):
    return json.loads(docker("inspect", *names).stdout)


def check_isolation(project):
    """Each service container runs unprivileged on a read-only root and is on its job's network
    only; from the inference worker PostgreSQL and the admin's metrics port neither resolve nor
    answer while the admin's API (on the engine's host) does; a stranger on the job's network gets 401 from the worker's
    /predict (only the job's predictor has the secret)."""
    ids = docker(
        "ps", "-q", "--filter", f"label=rafiki-rs.project={project}"
    ).stdout.split()
    services = inspect(*ids)
    for c in services:
        name = c["Name"].lstrip("/")
        network = f"{project}-job-{c['Config']['Labels']['rafiki-rs.job-id']}"
        if set(c["NetworkSettings"]["Networks"]) != {network}:
            sys.exit(f"FAILED: {name} is on {list(c['NetworkSettings']['Networks'])}")
        host = c["HostConfig"]
        if (
            c["Config"]["User"] != "10001:10001"
            or not host["ReadonlyRootfs"]
            or host["CapDrop"] != ["ALL"]
        ):
            sys.exit(f"FAILED: {name} is not hardened: {c['Config']['User']} {host}")
    postgres_id = docker(
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        "label=com.docker.compose.service=postgres",
    ).stdout.split()[0]
    postgres_ip = next(
        iter(inspect(postgres_id)[0]["NetworkSettings"]["Networks"].values())
    )["IPAddress"]
    worker = next(
        c
        for c in services
        if c["Config"]["Labels"]["rafiki-rs.service-type"] == "INFERENCE"
    )
    worker_name = worker["Name"].lstrip("/")
    probe = (
        "import socket, sys\n"
        "for target in [('postgres', 5432), (sys.argv[1], 5432),\n"
        "               ('host.docker.internal', 9100), ('admin', 9100)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=3).close()\n"
        "        sys.exit(f'reached {target}')\n"
        "    except OSError:\n"
        "        pass\n"
        "socket.create_connection(('host.docker.internal', 3000), timeout=5).close()\n"
    )
    reached = docker("exec", worker_name, "python3", "-c", probe, postgres_ip)
    if reached.returncode != 0:
        sys.exit(f"FAILED: from the inference worker: {reached.stdout}{reached.stderr}")
    port = next(
        v.split("=", 1)[1]
        for v in worker["Config"]["Env"]
        if v.startswith("RAFIKI_PORT=")
    )
    stranger = (
        "import sys, urllib.error, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], data=b'{\"queries\": [1]}',\n"
        "    headers={'content-type': 'application/json'})\n"
        "try:\n"
        "    print(urllib.request.urlopen(request, timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    refused = docker(
        "run",
        "--rm",
        "--network",
        next(iter(worker["NetworkSettings"]["Networks"])),
        worker["Config"]["Image"],
        "python3",
        "-c",
        stranger,
        f"http://{worker_name}:{port}/predict",
    )
    if refused.stdout.strip() != "401":
        sys.exit(
            f"FAILED: the worker answered a stranger: {refused.stdout}{refused.stderr}"
        )
    print(
        f"== isolated: {len(services)} services on their job's network, no PostgreSQL, "
        "/predict without the secret refused",
        flush=True,
    )


def csrf_of(page):
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or not found:
        sys.exit(
            f"FAILED: no form token on {page.url} ({page.status_code}): {page.text}"
        )
    return found.group(1)


def predict_in_console(admin, password, app, query):
    """The console's predict box, used as a browser would (a session, its cookies and form
    tokens): the admin itself sends the query to the predictor from its container, so this
    checks the admin's own way to the predictor, which the clients' predictor_host is not.
    Returns the answer the page shows."""
    browser = requests.Session()
    login = browser.get(f"{admin}/console/login", timeout=30)
    if "rafiki_csrf" not in browser.cookies:
        sys.exit(f"FAILED: the login page set no rafiki_csrf cookie: {login.headers}")
    logged_in = browser.post(
        f"{admin}/console/login",
        data={
            "csrf": csrf_of(login),
            "email": "superadmin@rafiki",
            "password": password,
        },
        timeout=30,
    )
    if logged_in.status_code != 200 or "rafiki_session" not in browser.cookies:
        sys.exit(f"FAILED: console login answered {logged_in.status_code}")
    job_page = f"{admin}/console/inference_jobs/{quote(app, safe='')}/1"
    csrf = csrf_of(browser.get(job_page, timeout=30))
    answered = browser.post(
        f"{job_page}/predict",
        data={"csrf": csrf, "query": json.dumps(query), "kind": "query"},
        timeout=90,
    )
    shown = re.search(r'<pre class="answer"[^>]*>(.*?)</pre>', answered.text, re.DOTALL)
    if answered.status_code != 200 or not shown:
        failed = re.search(r'role="alert"[^>]*>(.*?)<', answered.text, re.DOTALL)
        sys.exit(
            f"FAILED: the console's predict box answered {answered.status_code}: "
            f"{failed.group(1) if failed else answered.text}"
        )
    return json.loads(html.unescape(shown.group(1)))


def promql(container, expr):
    """An instant query to the monitoring profile's Prometheus, asked from inside its container
    (its port is not published on a swarm): the result's samples as (labels, value) pairs."""
    out = docker(
        "exec",
        container,
        "promtool",
        "query",
        "instant",
        "-o",
        "json",
        "http://localhost:9090",
        expr,
    )
    if out.returncode != 0:
        sys.exit(f"FAILED: promtool query {expr}: {out.stdout}{out.stderr}")
    return [(s["metric"], float(s["value"][1])) for s in json.loads(out.stdout)]


def check_monitoring(container):
    """The `monitoring` profile: Prometheus scrapes the admin and, found through the admin's
    service discovery, the job's predictor, and has what an operator asks of it (trials per
    minute, predictions and their p99, every metric its rules read)."""

    def scraped(expr, at_least=1.0):
        def check():
            samples = promql(container, expr)
            return samples if samples and samples[0][1] >= at_least else None

        return wait(f"Prometheus has {expr} >= {at_least}", check, 120)

    scraped('up{job="rafiki-admin"}')
    scraped('up{job="rafiki-predictor",rafiki_app="wine",rafiki_app_version="1"}')
    # The predict from the host and the console's.
    scraped(
        'sum(rafiki_predictor_requests_total{rafiki_app="wine",route="/predict"})', 2
    )
    scraped('sum(rafiki_trials_finished_total{status="COMPLETED"})', 2)
    scraped('count(rafiki:predict_duration_seconds:p99_rate5m{rafiki_app="wine"})')
    rules_file = os.path.join(
        os.path.dirname(__file__), "../docker/prometheus/rules.yml"
    )
    with open(rules_file) as f:
        rules = f.read()
    read = {
        re.sub(r"_(bucket|count|sum)$", "", m)
        for m in re.findall(r"\brafiki_[a-z_]+", rules)
    }
    read -= {"rafiki_app", "rafiki_app_version"}
    names = {
        s[0]["__name__"]
        for s in promql(container, 'count by (__name__) ({__name__=~"rafiki_.+"})')
    }
    names = {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}
    if read - names:
        sys.exit(
            f"FAILED: Prometheus has none of {sorted(read - names)}, which its rules read"
        )
    print(
        f"== Prometheus scraped the admin and the predictor: {len(names)} metrics",
        flush=True,
    )


def main():
    port = int(os.environ.get("E2E_ADMIN_PORT", "3000"))
    data = sys.argv[1]
    client = Client(admin_host="127.0.0.1", admin_port=port)
    client.login(email="superadmin@rafiki", password=os.environ["SUPERADMIN_PASSWORD"])
    started = time.monotonic()
    task = "TABULAR_CLASSIFICATION"
    train = client.create_dataset(
        "wine-train", task, os.path.join(data, "wine_train.csv")
    )
    val = client.create_dataset("wine-val", task, os.path.join(data, "wine_val.csv"))
    model_file = os.path.join(
        os.path.dirname(__file__),
        "..",
        "examples/models/tabular_classification/SkMlpClf.py",
    )
    model = client.create_model("mlp", task, model_file, "SkMlpClf")
    client.create_train_job(
        "wine",
        task,
        train["id"],
        val["id"],
        budget={"MODEL_TRIAL_COUNT": 2},
        models=[model["id"]],
        train_args={"target": "target"},
    )
    print("== train job created", flush=True)

    def train_ended():
        job = client.get_train_job("wine")
        return job if job["status"] in ("STOPPED", "ERRORED") else None

    job = wait("the train job ends", train_ended, 300)
    if job["status"] != "STOPPED":
        sys.exit(f"FAILED: the train job ended {job['status']}: {job}")
    trials = client.get_trials_of_train_job("wine")
    completed = [t for t in trials if t["status"] == "COMPLETED"]
    if len(completed) != 2:
        sys.exit(f"FAILED: expected 2 completed trials: {trials}")
    print(f"== trained: scores {[t['score'] for t in completed]}", flush=True)

    client.create_inference_job("wine")

    def serving():
        job = client.get_running_inference_job("wine")
        if job["status"] == "ERRORED":
            sys.exit(f"FAILED: the deployment errored: {job}")
        return job if job["status"] == "RUNNING" else None

    job = wait("the deployment runs", serving, 180)
    # The docker backend's containers and networks; the swarm backend's services are checked
    # by its API tests (tests/api/swarm.rs).
    if os.environ.get("E2E_BACKEND", "docker") == "docker":
        check_isolation(os.environ.get("E2E_PROJECT", "rafiki"))
    host = job["predictor_host"]
    with open(os.path.join(data, "wine_val.csv")) as f:
        header = f.readline().strip().split(",")
        row = f.readline().strip().split(",")
    query = {k: float(v) for k, v in zip(header, row) if k != "target"}
    answer = requests.post(f"http://{host}/predict", json={"query": query}, timeout=30)
    answer.raise_for_status()
    probabilities = answer.json()["prediction"]
    if len(probabilities) != 3 or abs(sum(probabilities) - 1.0) > 1e-6:
        sys.exit(f"FAILED: not a probability vector over 3 classes: {answer.text}")
    print(f"== predicted through {host}: {probabilities}", flush=True)
    shown = predict_in_console(
        f"http://127.0.0.1:{port}", os.environ["SUPERADMIN_PASSWORD"], "wine", query
    )["prediction"]
    if len(shown) != 3 or any(abs(a - b) > 1e-9 for a, b in zip(shown, probabilities)):
        sys.exit(
            f"FAILED: the console's predict box showed {shown}, not {probabilities}"
        )
    print(f"== predicted through the console's predict box: {shown}", flush=True)
    prometheus = os.environ.get("E2E_PROMETHEUS_CONTAINER")
    if prometheus:
        check_monitoring(prometheus)

    client.stop_inference_job("wine")
    print(f"== stopped; whole run {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
