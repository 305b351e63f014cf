"""What MLflow costs before a record's first run, in a fresh process: the floor under the
record of a short search.

Each repetition is a fresh child process (its own folder) that times, one after the other,
what autoreg's recorder process does while the trials run: importing mlflow, importing its
SQL tracking store, opening a new SQLite store (schema migrations) or an existing one, and
warming the first model save (``autoreg.mlflow_model.warm_up``). CPU seconds are the child's
own. Repetitions are interleaved.

    python tests/benchmarks/bench_mlflow_startup.py            # 5 repetitions
    python tests/benchmarks/bench_mlflow_startup.py --reps 3

Writes tests/benchmarks/results/mlflow_startup.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, environment, median, run_child, table, write_json  # noqa: E402

HERE = Path(__file__).resolve()
VARIANTS = ("new", "existing")
STEPS = ("import mlflow", "import SQL store", "open store", "warm model save")


def child(variant: str, uri: str) -> None:
    seconds, cpu = {}, {}

    def step(name, action):
        t0, c0 = time.perf_counter(), time.process_time()
        action()
        seconds[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0

    def open_store():
        from mlflow import MlflowClient

        MlflowClient(uri).search_experiments()

    def warm():
        from autoreg.mlflow_model import warm_up

        warm_up()

    step("import mlflow", lambda: __import__("mlflow"))
    step("import SQL store", lambda: __import__("mlflow.store.tracking.sqlalchemy_store"))
    step("open store", open_store)
    step("warm model save", warm)
    emit({"variant": variant, "seconds": seconds, "cpu": cpu})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "URI"))
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="autoreg-bench-startup-") as tmp:
        existing = f"sqlite:///{tmp}/existing.db"
        subprocess.run([sys.executable, "-c", "from mlflow import MlflowClient; "
                        f"MlflowClient({existing!r}).search_experiments()"], check=True,
                       stderr=subprocess.DEVNULL)
        for rep in range(args.reps):
            for variant in VARIANTS:
                uri = existing if variant == "existing" else f"sqlite:///{tmp}/new-{rep}.db"
                r = run_child(HERE, [variant, uri])
                runs.append(r)
                print(f"  rep {rep} {variant:8s} {sum(r['seconds'].values()):.2f} s", flush=True)
    rows, summary = [], {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        parts = {s: median([r["seconds"][s] for r in mine]) for s in STEPS}
        total = median([sum(r["seconds"].values()) for r in mine])
        cpu = median([sum(r["cpu"].values()) for r in mine])
        summary[variant] = {"steps_s": parts, "total_s": total, "total_cpu_s": cpu}
        rows.append([f"{variant} store", *parts.values(), total, cpu])
    print(table(["variant", *[f"{s} s" for s in STEPS], "total s", "CPU s"], rows))
    path = write_json("mlflow_startup", {"environment": environment(), "reps": args.reps,
                                         "runs": runs, "summary": summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
