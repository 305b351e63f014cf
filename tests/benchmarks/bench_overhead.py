"""Host overhead of autoreg against a hand-written in-memory Optuna loop on ``diabetes``.

Target: autoreg's extra time per trial (storage, measuring, bookkeeping, logging) is at most 50%
of the hand-written loop's time per trial, both measured as the marginal cost between N=100 and
N=300 trials, ``(t300 - t100) / 200``; the fixed cost of one search (start-up, final MLflow
logging) stays under about 3 s.

The baseline loop does what a careful user would write by hand: an in-memory multi-objective study
with the sampler autoreg uses (TPE, seeded, multivariate, group), the same conditional space
(penalty in elasticnet/l1/l2/none, the plugins' parameter ranges), the same preprocessing and
5-fold split prepared once up front (``autoreg.search.prepare``), the same scikit-learn estimators
(built by the plugins' ``linear_estimator``), CV plus a final refit, and returns
(RMSE, number of zero coefficients, coef nbytes).

autoreg runs end to end with its default journal storage in a fresh AUTOREG_HOME and a fresh
SQLite MLflow store. For context, a naive loop with SQLite Optuna storage and one MLflow run per
trial is timed at N=100.

Each run is a fresh child process; kinds and sizes are interleaved over the repetitions and the
medians are reported. Heavy libraries every variant needs (numpy, pandas, scikit-learn, optuna)
are imported before the clock starts; mlflow is not (it is part of autoreg's fixed cost).

    python tests/benchmarks/bench_overhead.py            # N=100/300, 3 repetitions
    python tests/benchmarks/bench_overhead.py --quick    # smoke test: N=20/60, 1 repetition
    python tests/benchmarks/bench_overhead.py --profile  # + cProfile of one autoreg search

Writes tests/benchmarks/results/overhead.json (overhead_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS,
    Timers,
    emit,
    engine,
    environment,
    median,
    run_child,
    table,
    write_json,
)

SCRIPT = Path(__file__).resolve()
DATASET = "diabetes"
# The hand loop searches the penalties alone, so autoreg is held to the same space.
TECHNIQUES = ["elasticnet", "l1", "l2", "none"]
TARGET_RATIO = 0.5
TARGET_FIXED_S = 3.0


# ==============================================================================================
# child side
# ==============================================================================================
def _preimport() -> float:
    t0 = time.perf_counter()
    import numpy  # noqa: F401
    import optuna  # noqa: F401
    import optuna.samplers  # noqa: F401
    import pandas  # noqa: F401
    import scipy.sparse  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    return time.perf_counter() - t0


def _sampler(seed: int):
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _hand_objective(ws, fit_clock: list):
    """The hand-written objective: same space, estimators, folds and refit as autoreg."""
    import dataclasses

    import numpy as np
    from autoreg_plugins.elasticnet import ElasticNet
    from autoreg_plugins.l1 import L1
    from autoreg_plugins.l2 import L2
    from sklearn.linear_model import LinearRegression

    from autoreg.technique import Choice, Float, Int

    techniques = {t.name: t for t in (ElasticNet, L1, L2)}
    choices = sorted(techniques) + ["none"]
    ctx = ws.contexts["linear"]

    def suggest(trial, name, spec):
        if isinstance(spec, Float):
            return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        if isinstance(spec, Int):
            return trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        assert isinstance(spec, Choice)
        return trial.suggest_categorical(name, list(spec.choices))

    def make(tech, c):
        return LinearRegression() if tech is None else tech.linear_estimator(c)

    def objective(trial):
        choice = trial.suggest_categorical("penalty", choices)
        tech = None
        if choice != "none":
            cls = techniques[choice]
            tech = cls(**{p: suggest(trial, f"{choice}.{p}", spec)
                          for p, spec in sorted(cls.search_space("linear",
                                                                 "regression").items())})
        errors = []
        for fold in ws.folds:
            est = make(tech, dataclasses.replace(ctx, n_samples=fold.X_train.shape[0]))
            t0 = time.perf_counter()
            est.fit(fold.X_train, fold.y_train)
            fit_clock[0] += time.perf_counter() - t0
            pred = fold.X_val @ est.coef_ + est.intercept_
            errors.append(float(np.sqrt(np.mean((fold.y_val - pred) ** 2))))
        est = make(tech, ctx)
        t0 = time.perf_counter()
        est.fit(ws.X_full, ws.y_full)
        fit_clock[0] += time.perf_counter() - t0
        coef = np.asarray(est.coef_)
        return float(np.mean(errors)), int(np.count_nonzero(coef == 0)), int(coef.nbytes)

    return objective


def _workspace():
    from autoreg import data as data_mod
    prepare = engine().prepare

    ds = data_mod.load(DATASET)
    return prepare(ds, "auto", 0.2, 0, ("linear",))


def _breakdown_timers(kind: str) -> Timers:
    """Per-trial pieces, for one extra run of each kind (never for the timed repetitions)."""
    import optuna.study._optimize as opt
    from optuna.study import Study
    from optuna.trial import Trial
    from sklearn.linear_model import ElasticNet, LinearRegression, Ridge

    timers = Timers()
    timers.wrap(opt, "_run_trial", "trial_total")
    timers.wrap(Study, "ask", "optuna_ask")
    timers.wrap(opt, "_tell_with_warning", "optuna_tell")
    timers.wrap(Trial, "_suggest", "optuna_suggest (TPE sampling + param storage)")
    for cls in (ElasticNet, Ridge, LinearRegression):  # Lasso inherits ElasticNet.fit
        timers.wrap(cls, "fit", "sklearn_fit")
    if kind == "autoreg":
        from autoreg.model import LinearPredictor
        from autoreg.storage import ModelStore

        timers.wrap(Trial, "set_user_attr", "trial.set_user_attr (storage)")
        timers.wrap(LinearPredictor, "from_fit", "export: LinearPredictor.from_fit")
        timers.wrap(LinearPredictor, "to_bytes", "export: LinearPredictor.to_bytes")
        timers.wrap(ModelStore, "put", "ModelStore.put (artifact file)")
        warm = getattr(engine(), "WarmStarts", None)
        if warm is not None:
            timers.wrap(warm, "nearest", "WarmStarts.nearest + add")
            timers.wrap(warm, "add", "WarmStarts.nearest + add")
    return timers


def child_loop(n_trials: int, seed: int, breakdown: bool, journal: bool = False) -> dict:
    """The hand loop; ``journal`` swaps the in-memory storage for autoreg's default journal file
    (a diagnostic: it isolates what the storage costs per trial)."""
    import os
    import warnings

    import optuna

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    timers = _breakdown_timers("loop") if breakdown else None
    fit_clock = [0.0]
    t0, c0 = time.perf_counter(), time.process_time()
    ws = _workspace()
    t_prep = time.perf_counter() - t0
    storage = None
    if journal:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(os.path.join(os.environ["BENCH_TMP"],
                                                                 "loop.journal")))
    study = optuna.create_study(directions=["minimize", "maximize", "minimize"],
                                sampler=_sampler(seed), storage=storage)
    t1, c1 = time.perf_counter(), time.process_time()
    study.optimize(_hand_objective(ws, fit_clock), n_trials=n_trials, gc_after_trial=False)
    t_opt, c_opt = time.perf_counter() - t1, time.process_time() - c1
    total, c_total = time.perf_counter() - t0, time.process_time() - c0
    return {"total_s": total, "prepare_s": t_prep, "optimize_s": t_opt, "fit_s": fit_clock[0],
            "total_cpu_s": c_total, "optimize_cpu_s": c_opt,
            "n_complete": len(study.trials), "front_size": len(study.best_trials),
            "recipes": _recipes(t.params.get("penalty") for t in study.trials),
            "breakdown": timers.as_dict() if timers else None}


def child_autoreg(n_trials: int, seed: int, breakdown: bool, warm_mlflow: bool = False) -> dict:
    """autoreg end to end; ``warm_mlflow`` creates the MLflow store first, in another process,
    as on every search after a user's first (mlflow's import stays on the clock)."""
    import subprocess

    import optuna

    import autoreg.tracking as T
    from autoreg.result import SearchResult

    S = engine()

    timers = _breakdown_timers("autoreg") if breakdown else Timers()
    # Once-per-search pieces: wrapping them costs microseconds, so every run records them.
    timers.wrap(S, "load_techniques", "fixed: load_techniques (plugins)")
    timers.wrap(S.data_mod, "load", "fixed: data.load")
    timers.wrap(S, "prepare", "fixed: prepare")
    timers.wrap(S, "open_storage", "fixed: open_storage")
    timers.wrap(S, "_open_study", "fixed: _open_study")
    timers.wrap(optuna.study.Study, "optimize", "study.optimize")
    timers.wrap(SearchResult, "__init__", "fixed: SearchResult()")
    timers.wrap(SearchResult, "measure_test_error", "fixed: measure_test_error")
    # Split MLflow's own start-up (import, store creation) from the logging itself.
    original_client = T._client

    def client(uri):  # with a background Connection, this runs in that thread
        t0 = time.perf_counter()
        out = original_client(uri)
        timers.seconds["mlflow: client + store init"] = time.perf_counter() - t0
        return out

    T._client = client
    if hasattr(T, "Connection"):
        # autoreg imports mlflow and opens the store in a thread while the trials run: time the
        # thread, and what the main thread still waits for once the trials are done.
        timers.wrap(T.Connection, "_run", "mlflow: background open (import + store), wall")
        timers.wrap(T.Connection, "get", "mlflow: main thread waits for the open store")
    else:
        original_log = T.log_search

        def log_search(*args, **kwargs):
            t0 = time.perf_counter()
            import mlflow  # noqa: F401
            timers.seconds["mlflow: import"] = time.perf_counter() - t0
            return original_log(*args, **kwargs)

        T.log_search = log_search
    timers.wrap(T, "log_search", "fixed: log_search (MLflow, total)")
    tracking = os.environ["MLFLOW_TRACKING_URI"]
    if warm_mlflow:
        subprocess.run([sys.executable, "-c", "import sys, mlflow; "
                        "mlflow.MlflowClient(sys.argv[1]).search_experiments()", tracking],
                       check=True, capture_output=True)
    t0, c0 = time.perf_counter(), time.process_time()
    result = S.search(DATASET, n_trials=n_trials, seed=seed, tracking_uri=tracking,
                      techniques=TECHNIQUES)
    total, c_total = time.perf_counter() - t0, time.process_time() - c0
    parts = timers.as_dict()
    return {"total_s": total, "optimize_s": parts["study.optimize"]["seconds"],
            "total_cpu_s": c_total, "optimize_cpu_s": parts["study.optimize"]["cpu_seconds"],
            "prepare_s": parts["fixed: prepare"]["seconds"] + parts["fixed: data.load"]["seconds"],
            "mlflow_s": parts["fixed: log_search (MLflow, total)"]["seconds"],
            "fit_s": float(result.trials["fit_seconds"].sum()),
            "n_complete": int(len(result.trials)), "n_failed": int(len(result.failed)),
            "front_size": int(len(result.front)),
            "recipes": _recipes(result.trials["recipe"]),
            "tracking_error": getattr(result, "tracking_error", None),
            "timers": parts, "breakdown": parts if breakdown else None}


def child_naive(n_trials: int, seed: int, breakdown: bool) -> dict:
    """SQLite Optuna storage and one MLflow run per trial: what autoreg avoids (context only)."""
    import warnings

    import optuna

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = os.environ["BENCH_TMP"]
    fit_clock = [0.0]
    t0, c0 = time.perf_counter(), time.process_time()
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("naive")
    t_mlflow_setup = time.perf_counter() - t0
    ws = _workspace()
    inner = _hand_objective(ws, fit_clock)

    def objective(trial):
        values = inner(trial)
        with mlflow.start_run(run_name=f"trial-{trial.number}"):
            mlflow.log_params(trial.params)
            mlflow.log_metrics({"error": values[0], "n_zero": values[1], "size": values[2]})
        return values

    study = optuna.create_study(directions=["minimize", "maximize", "minimize"],
                                sampler=_sampler(seed), storage=f"sqlite:///{tmp}/optuna.db")
    t1 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, gc_after_trial=False)
    t_opt = time.perf_counter() - t1
    return {"total_s": time.perf_counter() - t0, "optimize_s": t_opt,
            "total_cpu_s": time.process_time() - c0,
            "mlflow_setup_s": t_mlflow_setup, "fit_s": fit_clock[0],
            "n_complete": len(study.trials), "front_size": len(study.best_trials),
            "breakdown": None}


def child_profile(n_trials: int, seed: int, out: str) -> dict:
    import cProfile
    import io
    import pstats

    S = engine()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    S.search(DATASET, n_trials=n_trials, seed=seed, tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
             techniques=TECHNIQUES)
    prof.disable()
    total = time.perf_counter() - t0
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(30)
    Path(out).write_text(f"autoreg.search({DATASET!r}, n_trials={n_trials}) under cProfile: "
                         f"{total:.2f} s\n\n" + buf.getvalue())
    return {"total_s": total, "profile": out}


def _recipes(values) -> dict:
    counts: dict = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def child_main(argv: list[str]) -> None:
    kind, n, seed = argv[0], int(argv[1]), int(argv[2])
    breakdown = "--breakdown" in argv
    import_s = _preimport()
    if kind == "profile":
        payload = child_profile(n, seed, argv[3])
    else:
        payload = {"loop": child_loop, "autoreg": child_autoreg, "naive": child_naive,
                   "loop_journal": lambda *a: child_loop(*a, journal=True),
                   "autoreg_warm": lambda *a: child_autoreg(*a, warm_mlflow=True)}[kind](
            n, seed, breakdown)
    payload.update({"kind": kind, "n_trials": n, "seed": seed, "preimport_s": import_s})
    emit(payload)


# ==============================================================================================
# parent side
# ==============================================================================================
def _append_latency_ms(n: int = 200) -> tuple[float, float]:
    """Latency of one small append with and without fsync, in a temp folder on this disk."""
    import tempfile

    line = b'{"op_code":5,"worker_id":"w","trial_id":1,"param_name":"l1.strength"}\n'
    out = []
    with tempfile.TemporaryDirectory(prefix="autoreg-bench-") as tmp:
        path = os.path.join(tmp, "append.log")
        for sync in (True, False):
            t0 = time.perf_counter()
            for _ in range(n):
                with open(path, "ab") as fh:
                    fh.write(line)
                    fh.flush()
                    if sync:
                        os.fsync(fh.fileno())
            out.append((time.perf_counter() - t0) / n * 1e3)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: N=20/60, 1 repetition")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 if quick)")
    ap.add_argument("--small", type=int, default=None, help="small N (default 100)")
    ap.add_argument("--large", type=int, default=None, help="large N (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-naive", action="store_true", help="skip the naive SQLite+MLflow row")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the per-trial breakdown")
    ap.add_argument("--profile", action="store_true",
                    help="also write a cProfile of one autoreg search at the large N")
    args = ap.parse_args()
    small = args.small or (20 if args.quick else 100)
    large = args.large or (60 if args.quick else 300)
    reps = args.reps or (1 if args.quick else 5)
    name = "overhead_quick" if args.quick else "overhead"
    started = time.perf_counter()
    env = environment()

    runs: list[dict] = []

    def run(kind, n, extra=()):
        r = run_child(SCRIPT, [kind, str(n), str(args.seed), *extra])
        print(f"  {kind:12s} N={n:4d}  {r['total_s']:7.2f} s  (fit {r['fit_s']:.2f} s, "
              f"front {r['front_size']})", flush=True)
        return r

    print(f"bench_overhead: N={small}/{large}, {reps} repetition(s), interleaved", flush=True)
    # Others edit autoreg while this runs: a repetition counts only if all its runs measured one
    # source version, and only repetitions of the latest version are kept (up to 3x reps tries).
    kept: list[list[dict]] = []
    discarded: list[dict] = []
    attempt = 0
    while len(kept) < reps and attempt < 3 * reps:
        order = [("loop", small), ("autoreg", small), ("loop", large), ("autoreg", large)]
        if attempt % 2:  # alternate which kind goes first, so drift in machine load hits both
            order = [("autoreg", small), ("loop", small), ("autoreg", large), ("loop", large)]
        order += [("autoreg_warm", small)] + ([] if args.no_naive else [("naive", small)])
        attempt += 1
        try:
            rep_runs = [run(kind, n) for kind, n in order]
        except RuntimeError as exc:  # typically autoreg caught half-way through an edit
            print(f"  a run failed, repetition discarded: {str(exc).splitlines()[-1]}",
                  flush=True)
            discarded.append({"error": str(exc)})
            continue
        versions = {r["source_digest"] for r in rep_runs}
        if len(versions) > 1:
            print("  autoreg's source changed during this repetition: discarded", flush=True)
            discarded += rep_runs
            continue
        if kept and kept[0][0]["source_digest"] not in versions:
            print(f"  autoreg's source changed: discarding {len(kept)} earlier repetition(s)",
                  flush=True)
            discarded += [r for rep in kept for r in rep]
            kept = []
        kept.append(rep_runs)
    reps = len(kept)
    runs = []
    for rep, rep_runs in enumerate(kept):
        for r in rep_runs:
            r["rep"] = rep
            runs.append(r)

    fsync_ms, flush_ms = _append_latency_ms()
    breakdowns = {}
    if not args.no_breakdown:
        print("per-trial breakdown runs (instrumented, not used for the headline numbers):")
        try:
            for kind in ("loop", "loop_journal", "autoreg"):
                breakdowns[kind] = run(kind, large, ["--breakdown"])
        except RuntimeError as exc:
            print(f"  a breakdown run failed, no breakdown: {str(exc).splitlines()[-1]}")
            breakdowns = {}

    profile_path = None
    if args.profile:
        profile_path = RESULTS / f"{name}_profile.txt"
        RESULTS.mkdir(parents=True, exist_ok=True)
        try:
            r = run_child(SCRIPT, ["profile", str(large), str(args.seed), str(profile_path)])
            print(f"  profile  N={large:4d}  {r['total_s']:7.2f} s -> {profile_path}")
        except RuntimeError as exc:
            print(f"  the profile run failed: {str(exc).splitlines()[-1]}")
            profile_path = None

    def med(kind, n, key="total_s"):
        return median([r[key] for r in runs if r["kind"] == kind and r["n_trials"] == n])

    def marginal(kind, key):
        return (med(kind, large, key) - med(kind, small, key)) / span

    def paired_ratio(key):
        """Median over repetitions of the ratio measured within one repetition (the two kinds
        ran minutes apart there, so slow drift in the machine's load cancels out)."""
        out = []
        for rep in range(reps):
            m = {}
            for kind in ("loop", "autoreg"):
                t = {r["n_trials"]: r[key] for r in runs if r["kind"] == kind and r["rep"] == rep}
                m[kind] = (t[large] - t[small]) / span
            out.append((m["autoreg"] - m["loop"]) / m["loop"])
        return median(out), out

    span = large - small
    summary: dict = {}
    for kind in ("loop", "autoreg"):
        mine = [r for r in runs if r["kind"] == kind]
        m_total = marginal(kind, "total_s")
        summary[kind] = {
            f"t{small}_s": med(kind, small), f"t{large}_s": med(kind, large),
            "per_trial_marginal_s": m_total,
            "per_trial_marginal_optimize_s": marginal(kind, "optimize_s"),
            "per_trial_marginal_cpu_s": marginal(kind, "total_cpu_s"),
            "per_trial_marginal_fit_s": marginal(kind, "fit_s"),
            "per_trial_marginal_nonfit_s": m_total - marginal(kind, "fit_s"),
            "fixed_intercept_s": med(kind, small) - small * m_total,
            "fixed_outside_optimize_s": median([r["total_s"] - r["optimize_s"] for r in mine]),
            "prepare_s": median([r["prepare_s"] for r in mine]),
        }
    a, lp = summary["autoreg"], summary["loop"]
    # The loop's line intercept is below its measured fixed cost because TPE's cost per trial grows
    # with the trials (t = F + aN + bN^2 puts -3e4*b into a 100/300 intercept); autoreg runs the
    # same sampler, so its fixed cost is its intercept corrected by the loop's bias. Time spent
    # outside study.optimize() misses what autoreg overlaps with the trials (a background thread
    # opening the MLflow store), so it is reported but not used for the target.
    a["fixed_corrected_s"] = (a["fixed_intercept_s"] - lp["fixed_intercept_s"]
                              + lp["fixed_outside_optimize_s"])
    a[f"extra_vs_loop_at_{small}_s"] = a[f"t{small}_s"] - lp[f"t{small}_s"]
    ratios = {}
    for label, key, paired in (
            ("end to end, wall clock (ratio of medians) [headline]", "per_trial_marginal_s",
             "total_s"),
            ("end to end, wall clock (median of per-repetition ratios)", None, "total_s"),
            ("study.optimize() only, wall clock", "per_trial_marginal_optimize_s", None),
            ("end to end, process CPU time", "per_trial_marginal_cpu_s", None),
            ("end to end minus the fit-time difference", "per_trial_marginal_nonfit_s", None)):
        if key is None:
            value, per_rep = paired_ratio(paired)
            ratios[label] = {"ratio": value, "per_rep": per_rep}
            continue
        extra = a[key] - lp[key]
        base = lp[key] if "nonfit" not in key else lp["per_trial_marginal_s"]
        ratios[label] = {"loop_s": lp[key], "autoreg_s": a[key], "extra_s": extra,
                         "ratio": extra / base}
    headline = ratios["end to end, wall clock (ratio of medians) [headline]"]
    extra, ratio = headline["extra_s"], headline["ratio"]
    a_runs = [r for r in runs if r["kind"] == "autoreg"]
    fixed_parts = {key: median([r["timers"].get(key, {"seconds": 0.0})["seconds"] for r in a_runs])
                   for key in a_runs[0]["timers"] if key.startswith(("fixed:", "mlflow:"))}
    summary["ratios"] = ratios
    summary["autoreg_extra_per_trial_s"] = extra
    summary["ratio_extra_to_loop"] = ratio
    summary["autoreg_fixed_parts_s"] = fixed_parts
    warm = [r for r in runs if r["kind"] == "autoreg_warm"]
    summary["autoreg_warm_mlflow"] = {
        f"t{small}_s": med("autoreg_warm", small),
        "fixed_intercept_s": med("autoreg_warm", small) - small * a["per_trial_marginal_s"],
        "fixed_outside_optimize_s": median([r["total_s"] - r["optimize_s"] for r in warm]),
        "log_search_s": median([r["mlflow_s"] for r in warm]),
        "mlflow_client_store_init_s": median(
            [r["timers"]["mlflow: client + store init"]["seconds"] for r in warm]),
    }
    summary["pass_ratio"] = ratio <= TARGET_RATIO
    summary["pass_fixed"] = a["fixed_corrected_s"] <= TARGET_FIXED_S
    if not args.no_naive:
        summary["naive"] = {f"t{small}_s": med("naive", small),
                            "per_trial_avg_s": med("naive", small) / small,
                            "optimize_per_trial_avg_s": med("naive", small, "optimize_s") / small}

    # -- report ---------------------------------------------------------------------------------
    ms, nan = 1e3, float("nan")
    rows = []
    for kind, label in (("loop", "hand loop (in-memory Optuna)"),
                        ("autoreg", "autoreg.search (journal + MLflow)")):
        s = summary[kind]
        rows.append([label, s[f"t{small}_s"], s[f"t{large}_s"], s["per_trial_marginal_s"] * ms,
                     s["per_trial_marginal_optimize_s"] * ms, s["per_trial_marginal_cpu_s"] * ms,
                     s["per_trial_marginal_fit_s"] * ms, s["fixed_intercept_s"],
                     s["fixed_outside_optimize_s"], s["prepare_s"]])
    w = summary["autoreg_warm_mlflow"]
    rows.append([f"autoreg, MLflow store already created (N={small} only)", w[f"t{small}_s"],
                 nan, nan, nan, nan, nan, w["fixed_intercept_s"], w["fixed_outside_optimize_s"],
                 nan])
    if not args.no_naive:
        nv = summary["naive"]
        rows.append([f"naive: sqlite Optuna + MLflow run/trial (N={small} only; avg ms/trial)",
                     nv[f"t{small}_s"], nan, nv["per_trial_avg_s"] * ms, nan, nan, nan, nan,
                     nan, nan])
    headers = ["variant", f"t{small} s", f"t{large} s", "ms/trial", "optimize ms/trial",
               "CPU ms/trial", "fit ms/trial", "intercept s", "outside optimize s",
               "load+prepare s"]
    print()
    print(f"Host overhead on {DATASET}: medians of {reps} runs; ms/trial = (t{large} - t{small}) "
          f"/ {span} (wall clock unless CPU)")
    print(table(headers, rows))
    print()
    rows = []
    for label, r in ratios.items():
        rows.append([label, r.get("loop_s", nan) * ms, r.get("autoreg_s", nan) * ms,
                     r.get("extra_s", nan) * ms, f"{r['ratio']:.0%}"])
    print(table(["autoreg's extra cost per trial, measured as", "loop ms", "autoreg ms",
                 "extra ms", "extra/loop"], rows))
    print(f"target extra/loop <= {TARGET_RATIO:.0%} (headline): "
          f"{'PASS' if summary['pass_ratio'] else 'FAIL'}")
    print()
    print(f"autoreg fixed cost: {a['fixed_corrected_s']:.2f} s = its line intercept "
          f"{a['fixed_intercept_s']:.2f} s - the loop's {lp['fixed_intercept_s']:.2f} s (TPE's "
          f"growing cost per trial) + the loop's fixed {lp['fixed_outside_optimize_s']:.2f} s "
          f"(target < {TARGET_FIXED_S:.0f} s): {'PASS' if summary['pass_fixed'] else 'FAIL'}")
    print(f"  time outside study.optimize(): {a['fixed_outside_optimize_s']:.2f} s; an N={small}"
          f" search takes {a[f'extra_vs_loop_at_{small}_s']:.2f} s longer than the loop")
    print(f"  with an existing MLflow store (every search after the first): N={small} takes "
          f"{w[f't{small}_s']:.2f} s (fresh store {a[f't{small}_s']:.2f} s); outside "
          f"optimize {w['fixed_outside_optimize_s']:.2f} s, of which log_search "
          f"{w['log_search_s']:.2f} s")
    print(table(["fixed-cost part (median, fresh MLflow store)", "s"],
                [[k, v] for k, v in fixed_parts.items()]))
    if breakdowns:
        print()
        keys = []
        for b in breakdowns.values():
            keys += [k for k in b["breakdown"] if k not in keys and not k.startswith(
                ("fixed:", "mlflow:", "study.optimize"))]
        rows = []
        for key in keys:
            row = [key]
            for kind in ("loop", "loop_journal", "autoreg"):
                entry = breakdowns[kind]["breakdown"].get(key)
                row.append(entry["seconds"] / large * ms if isinstance(entry, dict)
                           else float("nan"))
            rows.append(row)
        rest = ["rest of the trial (scoring, objective bookkeeping)"]
        for kind in ("loop", "loop_journal", "autoreg"):
            b = breakdowns[kind]["breakdown"]
            inner = sum(v["seconds"] for k, v in b.items() if k in keys and k != "trial_total")
            rest.append((b["trial_total"]["seconds"] - inner) / large * ms)
        rows.append(rest)
        print(f"Per-trial breakdown, one instrumented run of N={large} (ms per trial, average):")
        print(table(["piece", "loop", "loop + stock Optuna journal file", "autoreg"], rows))
        print(f"(fsync of one small journal append here: {fsync_ms:.2f} ms; without fsync "
              f"{flush_ms:.3f} ms)")
    digests = sorted({r["source_digest"] for r in runs})
    other = sorted({r["source_digest"] for r in breakdowns.values()} - set(digests))
    print(f"autoreg source version measured: {', '.join(digests)}"
          + (f" ({len(discarded)} runs of other versions discarded)" if discarded else ""))
    if other:
        print(f"WARNING: the breakdown runs measured another version ({', '.join(other)})")
    errors = {r.get("tracking_error") for r in runs if r.get("tracking_error")}
    if errors:
        print(f"WARNING: MLflow logging failed in some autoreg runs: {sorted(errors)}")
    elapsed = time.perf_counter() - started
    print(f"\nbenchmark wall time: {elapsed / 60:.1f} min")
    payload = {"benchmark": "overhead", "dataset": DATASET, "n_small": small, "n_large": large,
               "reps": reps, "seed": args.seed, "targets": {"ratio": TARGET_RATIO,
                                                             "fixed_s": TARGET_FIXED_S},
               "summary": summary, "runs": runs, "breakdown_runs": breakdowns,
               "profile": str(profile_path) if profile_path else None,
               "journal_append_ms": {"fsync": fsync_ms, "flush_only": flush_ms},
               "environment": env, "loadavg_end": list(os.getloadavg()),
               "source_versions": digests, "discarded_runs": discarded,
               "benchmark_wall_s": elapsed}
    path = write_json(name, payload)
    print(f"JSON: {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
