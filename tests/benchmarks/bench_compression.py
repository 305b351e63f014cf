"""How small can a model get without losing accuracy? Two searches with the default budget.

``digits`` / ``mlp``: first the dense float32 MLP with no regularization (a one-trial search with
technique ``none``; its export is the size reference), then the default ``--family mlp`` search
(100 trials, every technique). Target: the front holds a model at most 1/10 of the reference's
``size_bytes`` whose test accuracy is at most 1 percentage point below the reference's.

``breast_cancer`` / ``linear``: the default search. Target: the front holds a model using at most
1/3 of the 30 features whose test accuracy is within 1 point of the best front model's.

Test accuracy is measured here on the search's own test split (rows the search never saw), from
each front model's export file.

    python tests/benchmarks/bench_compression.py                 # both, seed 0
    python tests/benchmarks/bench_compression.py --only digits --seeds 0,1
    python tests/benchmarks/bench_compression.py --quick         # smoke test: 12 trials each

Writes tests/benchmarks/results/compression.json (compression_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, environment, progress, run_child, table, write_json  # noqa: E402

HERE = Path(__file__).resolve()


# -- child ----------------------------------------------------------------------------------
def _front_accuracy(result, X, y) -> list[dict]:
    idx = result.test_index
    X_test, y_test = X.iloc[idx], y[idx]
    rows = []
    for _, row in result.front.iterrows():
        model = result.model(int(row["trial"]))
        acc = float(np.mean(model.predict(X_test) == y_test))
        rows.append({"trial": int(row["trial"]), "recipe": row["recipe"],
                     "error": float(row["error"]), "test_error": float(row["test_error"]),
                     "sparsity": float(row["sparsity"]), "size_bytes": int(row["size_bytes"]),
                     "n_features_used": int(row["n_features_used"]), "test_accuracy": acc})
    return rows


def child(case: str, trials: int, seed: int) -> None:
    import autoreg
    from autoreg import datasets

    name = "digits" if case == "digits" else "breast_cancer"
    X, y = datasets.BUILTIN[name]()
    out = {"case": case, "trials": trials, "seed": seed}
    if case == "digits":
        t0 = time.perf_counter()
        base = autoreg.search(X, y, families=["mlp"], techniques=["none"], n_trials=1,
                              seed=seed, log_mlflow=False, study_name="reference")
        out["reference_seconds"] = time.perf_counter() - t0
        (ref,) = _front_accuracy(base, X, y)
        out["reference"] = ref
        progress(f"reference: {ref['size_bytes']} bytes, test accuracy "
                 f"{ref['test_accuracy']:.4f}")
    families = ["mlp"] if case == "digits" else ["linear"]
    t0 = time.perf_counter()
    result = autoreg.search(X, y, families=families, n_trials=trials, seed=seed,
                            log_mlflow=False, study_name="search")
    out["search_seconds"] = time.perf_counter() - t0
    out["failed"] = int(len(result.failed))
    out["front"] = _front_accuracy(result, X, y)
    out["n_features"] = int(X.shape[1])
    emit(out)


# -- parent ---------------------------------------------------------------------------------
def judge(run: dict) -> dict:
    front = run["front"]
    if run["case"] == "digits":
        ref = run["reference"]
        ok = [r for r in front if r["test_accuracy"] >= ref["test_accuracy"] - 0.01]
        best = min(ok, key=lambda r: r["size_bytes"]) if ok else None
        ratio = ref["size_bytes"] / best["size_bytes"] if best else float("nan")
        return {"best": best, "compression": ratio, "met": bool(best and ratio >= 10)}
    top = max(r["test_accuracy"] for r in front)
    ok = [r for r in front if r["test_accuracy"] >= top - 0.01]
    best = min(ok, key=lambda r: (r["n_features_used"], r["size_bytes"]))
    return {"best": best, "best_accuracy": top,
            "feature_fraction": best["n_features_used"] / run["n_features"],
            "met": best["n_features_used"] <= run["n_features"] / 3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, metavar=("CASE", "TRIALS", "SEED"))
    ap.add_argument("--only", choices=["digits", "breast_cancer"])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.child:
        case, trials, seed = args.child
        child(case, int(trials), int(seed))
        return
    trials = 12 if args.quick else args.trials
    cases = [args.only] if args.only else ["breast_cancer", "digits"]
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for case in cases:
            print(f"{case}, seed {seed}, {trials} trials ...", flush=True)
            run = run_child(HERE, [case, str(trials), str(seed)], timeout=3600)
            run["verdict"] = judge(run)
            runs.append(run)
            rows = [[r["trial"], r["recipe"], r["size_bytes"], r["sparsity"],
                     r["n_features_used"], r["test_accuracy"]] for r in
                    sorted(run["front"], key=lambda r: r["size_bytes"])]
            print(table(["trial", "recipe", "size_bytes", "sparsity", "features",
                         "test_acc"], rows))
            v = run["verdict"]
            if case == "digits":
                ref = run["reference"]
                print(f"reference (dense float32, no regularization): {ref['size_bytes']} bytes, "
                      f"test accuracy {ref['test_accuracy']:.4f}")
                if v["best"]:
                    print(f"smallest within 1 point: trial {v['best']['trial']} "
                          f"{v['best']['recipe']}: {v['best']['size_bytes']} bytes "
                          f"({v['compression']:.1f}x smaller), test accuracy "
                          f"{v['best']['test_accuracy']:.4f}")
            else:
                print(f"best front test accuracy {v['best_accuracy']:.4f}; fewest features "
                      f"within 1 point: {v['best']['n_features_used']} of {run['n_features']} "
                      f"(trial {v['best']['trial']} {v['best']['recipe']}, test accuracy "
                      f"{v['best']['test_accuracy']:.4f})")
            print(f"search {run['search_seconds']:.0f} s; target met: {v['met']}\n", flush=True)
    path = write_json("compression_quick" if args.quick else "compression",
                      {"environment": environment(), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
