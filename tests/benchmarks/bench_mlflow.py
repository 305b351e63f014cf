"""What MLflow logging costs a 200-trial search: none, a new or existing local store, a server.

Each variant runs ``autoreg.search("diabetes", n_trials=200)`` in a fresh child process (its
own folder and autoreg home). The search's time is split into the trials (``study.optimize``)
and what the MLflow record adds after them (``autoreg.tracking.log_search``: parent run,
tables, plots, one child run and one pyfunc model per front trial; its recorder process gets
MLflow ready while the trials run). The HTTP variant starts a real ``mlflow server`` on
a loopback port with a SQLite backend and served artifacts. Repetitions are interleaved.

    python tests/benchmarks/bench_mlflow.py             # 3 repetitions
    python tests/benchmarks/bench_mlflow.py --quick     # 1 repetition, 60 trials

Writes tests/benchmarks/results/mlflow.json (mlflow_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timers, emit, environment, median, run_child, table, write_json  # noqa: E402

HERE = Path(__file__).resolve()
#: ``local``: a new local store (the first search in a folder); ``existing``: a local store made
#: before the search (every later one); ``http``: an ``mlflow server``.
VARIANTS = ("none", "local", "existing", "http")


def child(variant: str, trials: int, uri: str) -> None:
    import autoreg
    from autoreg import engine, tracking

    timers = Timers()
    timers.wrap(tracking, "log_search", "mlflow record (log_search)")
    import optuna

    timers.wrap(optuna.study.Study, "optimize", "trials (study.optimize)")
    t0 = time.perf_counter()
    result = engine.search("diabetes", n_trials=trials, seed=0, log_mlflow=variant != "none",
                           tracking_uri=uri or None)
    total = time.perf_counter() - t0
    assert variant == "none" or result.mlflow_run_id, result.tracking_error
    emit({"variant": variant, "trials": trials, "total_s": total, "front": len(result.front),
          "timers": timers.as_dict(), "autoreg": autoreg.__version__})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path):
    port = _free_port()
    exe = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(exe), "server", "--backend-store-uri",
                             f"sqlite:///{root}/backend.db", "--artifacts-destination",
                             str(root / "artifacts"), "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "TRIALS", "URI"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.child:
        variant, trials, uri = args.child
        child(variant, int(trials), uri if uri != "-" else "")
        return
    trials, reps = (60, 1) if args.quick else (200, args.reps)
    runs = []
    with tempfile.TemporaryDirectory(prefix="autoreg-bench-mlflow-") as tmp:
        proc, url = start_server(Path(tmp))
        existing = f"sqlite:///{tmp}/existing.db"
        subprocess.run([sys.executable, "-c", "from mlflow import MlflowClient; "
                        f"MlflowClient({existing!r}).search_experiments()"], check=True,
                       stderr=subprocess.DEVNULL)
        try:
            for rep in range(reps):
                for variant in VARIANTS:
                    uri = {"none": "-", "local": "-", "existing": existing,
                           "http": url}[variant]
                    env = {"MLFLOW_TRACKING_URI": url} if variant == "http" else None
                    r = run_child(HERE, [variant, str(trials), uri], env=env)
                    r["rep"] = rep
                    runs.append(r)
                    print(f"  rep {rep} {variant:5s} total {r['total_s']:.2f} s", flush=True)
        finally:
            import signal

            os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started
            proc.wait(10)
    rows = []
    summary = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        trials_s = median([r["timers"]["trials (study.optimize)"]["seconds"] for r in mine])
        record = [r["timers"]["mlflow record (log_search)"]["seconds"] for r in mine]
        record_s = median(record) if variant != "none" else 0.0
        total = median([r["total_s"] for r in mine])
        front = median([r["front"] for r in mine])
        summary[variant] = {"total_s": total, "trials_s": trials_s, "record_s": record_s,
                            "front_median": front}
        rows.append([variant, total, trials_s, record_s, front,
                     record_s / front if front and record_s else float("nan")])
    print(table(["variant", "total s", "trials s", "MLflow record s", "front size",
                 "s per front trial"], rows))
    path = write_json("mlflow_quick" if args.quick else "mlflow",
                      {"environment": environment(), "trials": trials, "runs": runs,
                       "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
