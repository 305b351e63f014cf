"""Helpers shared by the benchmark scripts (not a test module: pytest never collects it).

Every measurement runs in a fresh child process (its own interpreter, temp folder, autoreg home
and MLflow store); the child prints one ``RESULT {json}`` line that the parent collects.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent.parent
MARK = "RESULT "
PROGRESS = "PROGRESS "


# -- parent side -------------------------------------------------------------------------------
def run_child(script: Path, args: list[str], *, timeout: float = 3600, env: dict | None = None
              ) -> dict:
    """Run ``script --child *args`` in a fresh temp folder and return its RESULT payload.

    Lines the child prints starting with ``PROGRESS`` are echoed as they come.
    """
    with tempfile.TemporaryDirectory(prefix="autoreg-bench-") as tmp:
        child_env = {**os.environ, "AUTOREG_HOME": str(Path(tmp) / ".autoreg"),
                     "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                     "BENCH_TMP": tmp, "PYTHONWARNINGS": "ignore", **(env or {})}
        child_env.pop("AUTOREG_DISABLE_PLUGINS", None)
        digest = source_digest()
        t0 = time.perf_counter()
        stdout = []
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([sys.executable, str(script), "--child", *args], cwd=tmp,
                                    env=child_env, stdout=subprocess.PIPE, stderr=err, text=True)
            watchdog = threading.Timer(timeout, proc.kill)
            watchdog.start()
            try:
                for line in proc.stdout:
                    stdout.append(line)
                    if line.startswith(PROGRESS):
                        print("   ", line.rstrip(), flush=True)
                proc.wait()
            except BaseException:
                proc.kill()
                raise
            finally:
                watchdog.cancel()
            err.seek(0)
            stderr = err.read()
        wall = time.perf_counter() - t0
    lines = [ln for ln in stdout if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((stderr or "".join(stdout)).strip().splitlines()[-25:])
        raise RuntimeError(f"child {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    payload = json.loads(lines[-1][len(MARK):])
    payload["process_wall_s"] = wall
    payload["source_digest"] = digest
    return payload


def source_digest() -> str:
    """A digest of autoreg's and the built-in plugins' source: others edit it while benchmarks
    run, so every run records the version it measured."""
    import hashlib

    h = hashlib.sha1()
    for folder in ("autoreg", "plugins"):
        for path in sorted((REPO / folder).rglob("*.py")):
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def environment() -> dict:
    """What the numbers were measured on (the machine is shared, so the load is recorded too)."""
    import importlib.metadata as md

    versions = {}
    for dist in ("autoreg", "optuna", "mlflow", "scikit-learn", "scipy", "numpy", "pandas"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    git = {}
    try:
        git["head"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                     capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "autoreg", "plugins"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        git["autoreg_modified_files"] = len(dirty.splitlines()) if dirty else 0
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()), "versions": versions,
            "git": git, "source_digest": source_digest(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return path


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in cells:
        pairs = enumerate(zip(r, widths, strict=True))
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs))
    return "\n".join(out)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


# -- child side --------------------------------------------------------------------------------
def emit(payload: dict) -> None:
    print(MARK + json.dumps(payload, default=float), flush=True)


def progress(message: str) -> None:
    print(PROGRESS + message, flush=True)


class Timers:
    """Wrap callables (module functions or class methods) to add up their wall time."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner, attr: str, key: str | None = None) -> None:
        key = key or attr
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        seconds, cpu, calls = self.seconds, self.cpu, self.calls
        seconds.setdefault(key, 0.0)
        cpu.setdefault(key, 0.0)
        calls.setdefault(key, 0)

        def timed(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                seconds[key] += time.perf_counter() - t0
                cpu[key] += time.process_time() - c0
                calls[key] += 1

        timed.__wrapped__ = func
        if isinstance(original, staticmethod):
            timed = staticmethod(timed)
        elif isinstance(original, classmethod):
            timed = classmethod(timed)
        setattr(owner, attr, timed)

    def as_dict(self) -> dict:
        return {k: {"seconds": v, "cpu_seconds": self.cpu.get(k, float("nan")),
                    "calls": self.calls.get(k, 1)} for k, v in self.seconds.items()}


def engine():
    """autoreg's search module (``autoreg.engine``; called ``autoreg.search`` in early versions)."""
    import importlib

    for name in ("autoreg.engine", "autoreg.search"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if hasattr(module, "prepare") and hasattr(module, "search"):
            return module
    raise ImportError("cannot find autoreg's search module (autoreg.engine)")


def vm_hwm_bytes() -> int | None:
    """Peak resident set size of this process, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def median(values):
    values = sorted(values)
    n = len(values)
    if not n:
        return float("nan")
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
