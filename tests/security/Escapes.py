"""A hostile model: its train() tries each way out of its sandbox and logs one message per
attempt, `probe <name>: blocked (<why>)` or `probe <name>: ESCAPED (<what it got>)`.

The tests that run it (crates/rafiki-worker/tests/sandbox.rs, crates/rafiki-admin/tests/api/
security.rs) give it its targets through train_args and fail on any ESCAPED line, or when a
probe is missing. It scores 0 and otherwise behaves, so its trials complete.
"""

import os
import socket
import subprocess

from rafiki.model import BaseModel, FixedKnob, logger

# Variable names whose presence anywhere the model can read them is an escape.
SECRET_NAMES = (
    "RAFIKI_SERVICE_TOKEN",
    "APP_SECRET",
    "SUPERADMIN_PASSWORD",
    "DATABASE_URL",
)


def report(name, escaped, detail):
    verdict = "ESCAPED" if escaped else "blocked"
    logger.log(f"probe {name}: {verdict} ({detail})")


def probe_own_environment(args):
    found = [n for n in SECRET_NAMES if n in os.environ]
    report("own-environment", bool(found), f"secret variables: {found}")


def probe_other_processes(args):
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    leaked = []
    foreign = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        leaked += [n for n in SECRET_NAMES if n.encode() + b"=" in environ]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmdline = ""
        if not any(
            word in cmdline for word in ("bwrap", "python", "rafiki.runtime", "sleep")
        ):
            foreign.append(cmdline.strip() or pid)
    escaped = (
        bool(leaked) or bool(foreign) or len(pids) > args.get("max_visible_pids", 8)
    )
    report(
        "other-processes",
        escaped,
        f"{len(pids)} processes visible, secrets {sorted(set(leaked))}, foreign {foreign[:5]}",
    )


def probe_read_files(args):
    for path in args.get("secret_files", []):
        try:
            with open(path, "rb") as f:
                data = f.read(64)
            report("read-file", True, f"read {len(data)} bytes of {path}")
        except OSError as e:
            report("read-file", False, f"{path}: {e.strerror}")
    # The folders above the model's own exist inside (its path leads through them), but none
    # of what they hold besides that path may show.
    hidden = set(args.get("hidden_names", []))
    for path in args.get("secret_dirs", []):
        try:
            names = os.listdir(path)
        except OSError as e:
            report("list-dir", False, f"{path}: {e.strerror}")
            continue
        seen = sorted(hidden.intersection(names))
        report("list-dir", bool(seen), f"{path} shows {sorted(names)[:8]}")


def probe_write_outside(args):
    for folder in args.get("outside_dirs", []) + ["/usr", "/etc", "/"]:
        target = os.path.join(folder, "rafiki-escape-probe")
        try:
            with open(target, "w") as f:
                f.write("pwned")
            report("write-outside", True, f"wrote {target}")
        except OSError as e:
            report("write-outside", False, f"{target}: {e.strerror}")


def probe_network(args):
    targets = [("127.0.0.1", p) for p in args.get("tcp_ports", [])]
    targets += [(h, p) for h, p in args.get("tcp_targets", [])]
    for host, port in targets:
        try:
            with socket.create_connection((host, port), timeout=2):
                pass
            report("connect", True, f"connected to {host}:{port}")
        except OSError as e:
            report("connect", False, f"{host}:{port}: {e}")


def probe_fork_bomb(args):
    limit = args.get("max_procs")
    if not limit:
        return
    children = []
    error = None
    try:
        for _ in range(limit * 2):
            children.append(subprocess.Popen(["sleep", "30"]))
    except OSError as e:
        error = e.strerror
    finally:
        for child in children:
            child.kill()
            child.wait()
    report(
        "fork-bomb",
        error is None,
        f"started {len(children)} of {limit * 2} processes; stopped by: {error}",
    )


def probe_fill_disk(args):
    mb = args.get("big_file_mb")
    if not mb:
        return
    for folder in (os.getcwd(), "/tmp"):
        target = os.path.join(folder, "big-file")
        chunk = b"\0" * (1 << 20)
        written = 0
        error = None
        try:
            with open(target, "wb") as f:
                for _ in range(mb):
                    f.write(chunk)
                    f.flush()
                    written += 1
        except OSError as e:
            error = e.strerror
        finally:
            try:
                os.remove(target)
            except OSError:
                pass
        report(
            "fill-disk",
            error is None,
            f"{folder}: wrote {written} of {mb} MiB; stopped by: {error}",
        )


PROBES = (
    probe_own_environment,
    probe_other_processes,
    probe_read_files,
    probe_write_outside,
    probe_network,
    probe_fork_bomb,
    probe_fill_disk,
)


class Escapes(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        for probe in PROBES:
            try:
                probe(train_args)
            except Exception as e:  # noqa: BLE001 - a probe that breaks is reported, never hidden
                report(probe.__name__, True, f"the probe itself failed: {e!r}")

    def evaluate(self, dataset_path):
        return 0.0

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"k": 1}

    def load_parameters(self, params):
        pass
