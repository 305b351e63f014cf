"""Sparse scale: a 50,000 x 100,000 CSR matrix at 0.05% density, 20 ``l1`` trials.

Target: the search completes with peak memory under 2 GiB and never densifies the data.

The search runs in a child process, which
- replaces ``toarray``/``todense`` on every scipy sparse class (``_spbase``, ``_cs_matrix`` -- so
  ``csr_matrix``/``csr_array``/``csc_*`` -- and the coo/lil/bsr bases) with a guard that records
  the call and raises, before the data is even generated;
- times data generation and the search, reads its own peak RSS (``VmHWM``) after the data is
  built and at the end.
The parent also reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``. The benchmark fails if the guard
fired (even inside a trial that autoreg recorded as failed), if any trial failed, or if the peak
RSS reaches 2 GiB.

    python tests/benchmarks/bench_sparse.py           # the full 50k x 100k problem
    python tests/benchmarks/bench_sparse.py --quick   # 5k x 20k, 5 trials
    python tests/benchmarks/bench_sparse.py --diagnose 0.07,0.02  # where l1 fit time goes

Writes tests/benchmarks/results/sparse.json (sparse_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Timers,
    emit,
    engine,
    environment,
    progress,
    run_child,
    table,
    vm_hwm_bytes,
    write_json,
)

SCRIPT = Path(__file__).resolve()
GIB = 1024 ** 3
TARGET_PEAK = 2 * GIB
FULL = {"n_samples": 50_000, "n_features": 100_000, "density": 0.0005, "n_trials": 20}
QUICK = {"n_samples": 5_000, "n_features": 20_000, "density": 0.001, "n_trials": 5}


# ==============================================================================================
# child side
# ==============================================================================================
class DensifyGuard:
    """Make every scipy sparse ``toarray``/``todense`` raise, and remember who called it."""

    def __init__(self):
        self.hits: list[dict] = []

    def install(self) -> list[str]:
        import scipy.sparse  # noqa: F401  (registers every format class)
        import scipy.sparse._base as base

        patched, seen, stack = [], set(), [base._spbase]
        while stack:
            cls = stack.pop()
            if cls in seen:
                continue
            seen.add(cls)
            stack.extend(cls.__subclasses__())
            for attr in ("toarray", "todense"):
                if attr in cls.__dict__:
                    setattr(cls, attr, self._guard(f"{cls.__name__}.{attr}"))
                    patched.append(f"{cls.__module__}.{cls.__name__}.{attr}")
        return sorted(patched)

    def _guard(self, name):
        hits = self.hits

        def refuse(mat, *args, **kwargs):
            hits.append({"call": name, "shape": list(mat.shape), "nnz": int(mat.nnz),
                         "stack": traceback.format_stack(limit=12)[:-1]})
            raise AssertionError(f"densified a sparse matrix: {name} on shape {mat.shape}")

        return refuse


def child_main(argv: list[str]) -> None:
    import os

    n_samples, n_features, n_trials = int(argv[0]), int(argv[1]), int(argv[3])
    density = float(argv[2])
    guard = DensifyGuard()
    patched = guard.install()

    import optuna

    import autoreg.tracking as T
    from autoreg.datasets import sparse_csr_regression
    from autoreg.result import SearchResult

    S = engine()
    timers = Timers()
    objective_call = S.Objective.__call__

    def call(self, trial):  # one progress line per trial: this benchmark runs for a long time
        t0 = time.perf_counter()
        try:
            return objective_call(self, trial)
        finally:
            progress(f"trial {trial.number}: {trial.params} {time.perf_counter() - t0:.1f} s")

    S.Objective.__call__ = call
    from autoreg.space import SearchSpace

    sample = SearchSpace.sample

    def sampled(self, trial):
        recipe = sample(self, trial)
        progress(f"trial {trial.number} starts: {recipe.params} "
                 f"({time.strftime('%H:%M:%S')})")
        return recipe

    SearchSpace.sample = sampled
    timers.wrap(S, "prepare", "prepare")
    timers.wrap(optuna.study.Study, "optimize", "study.optimize")
    timers.wrap(SearchResult, "measure_test_error", "measure_test_error")
    timers.wrap(T, "log_search", "log_search (MLflow)")
    hwm_start = vm_hwm_bytes()

    t0 = time.perf_counter()
    X, y = sparse_csr_regression(n_samples=n_samples, n_features=n_features, density=density)
    gen_s = time.perf_counter() - t0
    hwm_data = vm_hwm_bytes()
    data = {"shape": list(X.shape), "nnz": int(X.nnz), "format": X.format,
            "csr_bytes": int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes),
            "dense_bytes_if_densified": int(X.shape[0]) * int(X.shape[1]) * 8}

    payload: dict = {"data": data, "generate_s": gen_s, "patched": patched,
                     "vmhwm_start_bytes": hwm_start, "vmhwm_after_data_bytes": hwm_data}
    t0 = time.perf_counter()
    try:
        result = S.search(X, y, techniques=["l1"], n_trials=n_trials, seed=0,
                          tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    except Exception as exc:
        payload.update({"completed": False, "error": f"{type(exc).__name__}: {exc}"})
        result = None
    payload["search_s"] = time.perf_counter() - t0
    payload["vmhwm_end_bytes"] = vm_hwm_bytes()
    payload["timers"] = timers.as_dict()
    payload["densify_hits"] = guard.hits
    if result is not None:
        pick = result.pick()
        trials = result.trials
        payload.update({
            "completed": True,
            "tracking_error": getattr(result, "tracking_error", None),
            "validation": result.settings.get("validation"),
            "n_complete": int(len(trials)), "n_failed": int(len(result.failed)),
            "failed_reasons": result.failed["reason"].value_counts().to_dict(),
            "front_size": int(len(result.front)),
            "fit_seconds_total": float(trials["fit_seconds"].sum()),
            "fit_seconds_max": float(trials["fit_seconds"].max()),
            "pick": {"trial": int(pick["trial"]), "error": float(pick["error"]),
                     "test_error": float(pick["test_error"]),
                     "sparsity": float(pick["sparsity"]),
                     "size_bytes": int(pick["size_bytes"]),
                     "n_features_used": int(pick["n_features_used"])},
            "trials": trials[["trial", "l1.strength", "error", "sparsity", "size_bytes",
                              "n_features_used", "fit_seconds", "pareto"]
                             ].to_dict(orient="records"),
        })
    emit(payload)


def child_diagnose(argv: list[str]) -> None:
    """Where the l1 fit time goes on sparse input, on the validation split: scikit-learn's Lasso
    as the plugin builds it (fit_intercept=True: implicit centring, O(n_samples) per coefficient
    update), the same estimator through autoreg's ``LinearFamily.fit``, and a Lasso without
    intercept on a centred target (a lower bound)."""
    import dataclasses
    import warnings

    import numpy as np
    from autoreg_plugins.l1 import L1

    from autoreg import data as data_mod
    from autoreg.datasets import sparse_csr_regression
    from autoreg.families import FAMILIES

    warnings.simplefilter("ignore")
    n_samples, n_features, density = int(argv[0]), int(argv[1]), float(argv[2])
    strengths = [float(v) for v in argv[3].split(",")]
    X, y = sparse_csr_regression(n_samples=n_samples, n_features=n_features, density=density)
    ws = engine().prepare(data_mod.load(X, y), "auto", 0.2, 0, ("linear",))
    fold = ws.folds[0]
    ctx = dataclasses.replace(ws.contexts["linear"], n_samples=fold.X_train.shape[0])
    family = FAMILIES["linear"]
    rows = []
    for strength in strengths:
        for variant in ("sklearn fit_intercept=True", "autoreg LinearFamily.fit",
                        "no intercept, centred y"):
            est = L1(strength=strength).linear_estimator(ctx)
            t0 = time.perf_counter()
            if variant.startswith("autoreg"):
                fitted = family.fit(est, fold.X_train, fold.y_train, 1)
                coef, b = fitted.coef[:, 0], float(fitted.intercept[0])
            elif variant.startswith("no intercept"):
                est.set_params(fit_intercept=False)
                est.fit(fold.X_train, fold.y_train - fold.y_train.mean())
                coef, b = est.coef_, float(fold.y_train.mean())
            else:
                est.fit(fold.X_train, fold.y_train)
                coef, b = est.coef_, float(est.intercept_)
            seconds = time.perf_counter() - t0
            rmse = float(np.sqrt(np.mean((fold.y_val - (fold.X_val @ coef + b)) ** 2)))
            rows.append({"strength": strength, "variant": variant, "seconds": seconds,
                         "n_iter": int(np.max(est.n_iter_)), "nnz": int(np.count_nonzero(coef)),
                         "val_rmse": rmse})
            progress(f"{rows[-1]}")
    emit({"validation": ws.validation, "train_shape": list(fold.X_train.shape),
          "train_nnz": int(fold.X_train.nnz), "rows": rows})


# ==============================================================================================
# parent side
# ==============================================================================================
def diagnose(cfg: dict, strengths: str, quick: bool) -> None:
    print("diagnosis: one l1 fit on the validation split: scikit-learn with implicit centring, "
          "autoreg's LinearFamily.fit, and no intercept on a centred target")
    r = run_child(SCRIPT, ["diag", str(cfg["n_samples"]), str(cfg["n_features"]),
                           str(cfg["density"]), strengths], timeout=4 * 3600)
    rows = [[d["strength"], d["variant"], d["seconds"], d["n_iter"], d["nnz"], d["val_rmse"]]
            for d in r["rows"]]
    print(f"train split {r['train_shape']} nnz {r['train_nnz']:,} ({r['validation']})")
    print(table(["l1.strength", "fit", "fit s", "n_iter", "nonzero coefs", "val RMSE"], rows))
    name = "sparse_diagnose" + ("_quick" if quick else "")
    path = write_json(name, {"config": cfg, "child": r, "environment": environment()})
    print(f"JSON: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 5k x 20k, 5 trials")
    ap.add_argument("--trials", type=int, default=None, help="number of trials")
    ap.add_argument("--diagnose", metavar="STRENGTHS", default=None,
                    help="instead of the search, time single l1 fits at these comma-separated "
                         "strengths with and without the intercept (e.g. 0.07,0.02)")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.trials:
        cfg["n_trials"] = args.trials
    if args.diagnose:
        diagnose(cfg, args.diagnose, args.quick)
        return
    name = "sparse_quick" if args.quick else "sparse"
    env = environment()
    print(f"bench_sparse: {cfg['n_samples']:,} x {cfg['n_features']:,} CSR at density "
          f"{cfg['density']}, {cfg['n_trials']} l1 trials (child process)", flush=True)
    t0 = time.perf_counter()
    r = run_child(SCRIPT, [str(cfg["n_samples"]), str(cfg["n_features"]), str(cfg["density"]),
                           str(cfg["n_trials"])], timeout=4 * 3600)
    wall = time.perf_counter() - t0
    ru_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    peak = max(v for v in (r.get("vmhwm_end_bytes"), ru_maxrss) if v)
    hits = r["densify_hits"]
    ok_complete = bool(r.get("completed")) and r.get("n_failed", 1) == 0
    ok_dense = not hits
    ok_memory = peak < TARGET_PEAK
    timers = r["timers"]
    rows = [
        ["matrix", f"{r['data']['shape'][0]:,} x {r['data']['shape'][1]:,} "
                   f"{r['data']['format']}, nnz {r['data']['nnz']:,}"],
        ["CSR bytes / dense bytes if densified",
         f"{r['data']['csr_bytes'] / 2**20:.1f} MiB / "
         f"{r['data']['dense_bytes_if_densified'] / GIB:.1f} GiB"],
        ["validation scheme", r.get("validation", "-")],
        ["data generation s", r["generate_s"]],
        ["search wall s (autoreg.search)", r["search_s"]],
        ["  prepare s", timers["prepare"]["seconds"]],
        ["  study.optimize s", timers["study.optimize"]["seconds"]],
        ["  sum of trial fit_seconds", r.get("fit_seconds_total", float("nan"))],
        ["  slowest trial fit s", r.get("fit_seconds_max", float("nan"))],
        ["  measure_test_error s", timers["measure_test_error"]["seconds"]],
        ["  log_search (MLflow) s", timers["log_search (MLflow)"]["seconds"]],
        ["child process wall s", r["process_wall_s"]],
        ["trials complete / failed", f"{r.get('n_complete', 0)} / {r.get('n_failed', '-')}"],
        ["front size", r.get("front_size", "-")],
        ["pick: trial", r["pick"]["trial"] if "pick" in r else "-"],
        ["pick: sparsity", r["pick"]["sparsity"] if "pick" in r else "-"],
        ["pick: n_features_used", r["pick"]["n_features_used"] if "pick" in r else "-"],
        ["pick: val error (RMSE)", r["pick"]["error"] if "pick" in r else "-"],
        ["pick: test_error (RMSE)", r["pick"]["test_error"] if "pick" in r else "-"],
        ["pick: size_bytes", r["pick"]["size_bytes"] if "pick" in r else "-"],
        ["peak RSS after data (VmHWM) MiB", r["vmhwm_after_data_bytes"] / 2**20],
        ["peak RSS at end (VmHWM) MiB", r["vmhwm_end_bytes"] / 2**20],
        ["peak RSS (parent ru_maxrss) MiB", ru_maxrss / 2**20],
        ["MLflow record", "failed: " + r["tracking_error"] if r.get("tracking_error")
         else "logged"],
        ["densify calls (guarded)", len(hits)],
        ["completed, no failed trial", "PASS" if ok_complete else "FAIL"],
        ["never densified", "PASS" if ok_dense else "FAIL"],
        ["peak RSS < 2 GiB", "PASS" if ok_memory else "FAIL"],
    ]
    print(table(["bench_sparse", "value"], rows))
    if r.get("trials"):
        print()
        print(table(["trial", "l1.strength", "val error", "sparsity", "features used",
                     "fit s", "pareto"],
                    [[t["trial"], t["l1.strength"], t["error"], t["sparsity"],
                      t["n_features_used"], t["fit_seconds"], t["pareto"]]
                     for t in r["trials"]]))
    if not r.get("completed"):
        print(f"search error: {r.get('error')}")
    for hit in hits[:3]:
        print(f"densified: {hit['call']} shape {hit['shape']}\n" + "".join(hit["stack"][-6:]))
    if r.get("failed_reasons"):
        print(f"failed trials: {r['failed_reasons']}")
    payload = {"benchmark": "sparse", "config": cfg, "target_peak_bytes": TARGET_PEAK,
               "peak_rss_bytes": peak, "ru_maxrss_children_bytes": ru_maxrss,
               "pass": {"completed": ok_complete, "never_densified": ok_dense,
                        "memory": ok_memory},
               "wall_s": wall, "child": r, "environment": env}
    path = write_json(name, payload)
    print(f"JSON: {path}")
    if not (ok_complete and ok_dense and ok_memory):
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1:3] == ["--child", "diag"]:
        child_diagnose(sys.argv[3:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
