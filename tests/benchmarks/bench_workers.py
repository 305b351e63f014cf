"""Worker processes and server storage: the speed-up of ``n_jobs=2`` and the per-trial cost of
a PostgreSQL study (issue 5).

Targets:

1. **Parallel speed-up.** On a 2-core machine, ``autoreg.search(..., n_jobs=2)`` finishes a
   fit-dominated search at least 1.7x faster than ``n_jobs=1``. The workload is a generated
   dense regression (default 15,000 x 300, seed 0; 200 trials) searched with
   ``techniques=["l2"]``: ridge is solved in closed form (Cholesky), so a trial costs the same
   whatever strength the sampler draws, and 1 and 2 workers do equal work. The random sampler
   (no model-fitting cost of its own), 5-fold cross-validation (6 fits per trial),
   ``log_mlflow=False``. Four variants:

   - ``jobs1``: ``n_jobs=1`` as a user gets it (one BLAS thread: autoreg's default);
   - ``jobs2``: ``n_jobs=2`` as a user gets it (on Linux the second worker is a fork of this
     process, made once the data are prepared);
   - ``jobs2_spawn``: ``n_jobs=2`` with ``AUTOREG_WORKER_START=spawn``: the second worker is a
     fresh interpreter that imports autoreg and prepares the data itself (the default on
     macOS and Windows), to show what the fork saves;
   - ``jobs1_blasN``: ``n_jobs=1`` with ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/
     ``MKL_NUM_THREADS`` set to the core count, which autoreg then keeps: every core inside
     each fit, as autoreg ran before it limited BLAS to one thread by default.

   ``--workload mlp`` runs ``digits`` with the ``mlp`` family instead (default techniques,
   one torch thread per process; the second worker samples with its own seed, so its recipes,
   and their cost, differ from the first's).

   The clock runs from the call of ``autoreg.search`` to its return (so the second worker's
   start-up and data preparation count). The headline is median(jobs1) / median(jobs2), and
   the median of the per-repetition ratios beside it. Each run also records the CPU time of
   this process tree and of the whole machine, since the machine may be shared.

2. **Storage overhead.** The per-trial overhead of a search on a real PostgreSQL server stays
   within 2x that of the embedded default storage (the journal file). Per-trial overhead is the
   search's wall time per trial minus its fit time per trial (``fit_seconds`` of
   ``result.trials``), on a cheap workload: ``diabetes``, ``techniques=["l2"]``, the random
   sampler, 150 trials, one worker. Four storages: the journal file, SQLite, PostgreSQL through
   Optuna's RDB schema (``postgresql+psycopg://``) and autoreg's journal in PostgreSQL
   (``journal+postgresql://``, the one the target is for). The server comes from
   ``tests/postgres.py`` (``postgres_server(durable=True)``: every commit flushed to disk, as
   in production); every PostgreSQL measurement gets a new database
   on it.
   Beside the headline (which spreads the search's fixed costs, such as opening the storage and
   reading the result back, over its trials) a steady-state figure is given from the trials'
   own timestamps: (last completion - first completion) / (n - 1) minus the mean fit time,
   split into the part inside a trial (after the fits: export, attributes, tell) and the part
   between trials (sampling, claiming the next trial).

   When the PostgreSQL journal's overhead exceeds 2x the journal file's (or with
   ``--profile``) one search per storage runs under cProfile with every SQL statement counted
   (SQLAlchemy's ``before_cursor_execute`` event; ``psycopg.Connection.execute`` for the
   journal, one round trip each); the top functions go to ``results/workers_profile.txt`` and
   the statement counts per trial to the JSON.

Variants are interleaved (their order rotates each repetition) and medians are reported. The
machine these run on is shared: compare through the ratios.

    python tests/benchmarks/bench_workers.py               # 5 repetitions of each
    python tests/benchmarks/bench_workers.py --quick       # smoke test: small sizes, 1 rep
    python tests/benchmarks/bench_workers.py --part storage --profile

Writes tests/benchmarks/results/workers.json (workers_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    REPO,
    RESULTS,
    emit,
    environment,
    median,
    run_child,
    table,
    write_json,
)

SCRIPT = Path(__file__).resolve()
PAR_VARIANTS = ("jobs1", "jobs2", "jobs2_spawn", "jobs1_blasN")
STORES = ("journal", "sqlite", "postgresql", "pgjournal")
STORE_LABELS = {"journal": "journal file", "sqlite": "SQLite", "postgresql": "PostgreSQL (RDB)",
                "pgjournal": "PostgreSQL (journal)"}
TARGET_SPEEDUP = 1.7
TARGET_STORAGE_RATIO = 2.0


# -- child side --------------------------------------------------------------------------------
def _cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (the spawned workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def _preimport(postgres: bool = False) -> None:
    """Import what every variant needs before any clock starts (autoreg imports some of it
    lazily, inside the search), and before any thread limit: threadpoolctl limits only the BLAS
    libraries already loaded, and scipy's OpenBLAS is a library of its own."""
    import numpy  # noqa: F401
    import optuna  # noqa: F401
    import pandas  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    import autoreg  # noqa: F401

    if postgres:
        import psycopg  # noqa: F401
        import sqlalchemy  # noqa: F401


def _regression(rows: int, cols: int):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols))
    w = rng.standard_normal(cols) * (rng.random(cols) < 0.2)
    y = X @ w + rng.standard_normal(rows)
    return X, y


def child_parallel(variant: str, rows: int, cols: int, trials: int,
                   workload: str = "ridge") -> None:
    _preimport()
    from threadpoolctl import threadpool_info

    import autoreg

    if workload == "mlp":
        import torch  # noqa: F401 (imported before the clock, like the other libraries)

        from autoreg import datasets

        X, y = datasets.BUILTIN["digits"]()
        search_kw = dict(families=["mlp"])
    else:
        X, y = _regression(rows, cols)
        search_kw = dict(techniques=["l2"], validation=5)
    blas = max((p["num_threads"] for p in threadpool_info()), default=1)
    # The variant's environment (thread counts, how workers start) was set by the parent.
    n_jobs = 2 if variant.startswith("jobs2") else 1
    cpu0, (busy0, total0) = _cpu_seconds(), _machine_busy()
    t0 = time.perf_counter()
    result = autoreg.search(X, y, n_trials=trials, n_jobs=n_jobs, sampler="random",
                            seed=0, log_mlflow=False, **search_kw)
    wall = time.perf_counter() - t0
    cpu, (busy, total) = _cpu_seconds() - cpu0, _machine_busy()
    # Every BLAS/OpenMP library of this process as the search left it (the search holds its
    # fits to one thread inside itself, unless the variant set a count).
    threads_after_search = {p["filepath"].rsplit("/", 1)[-1]: p["num_threads"]
                            for p in threadpool_info()}
    fits = result.trials["fit_seconds"]
    assert len(result.trials) == trials, (len(result.trials), trials)
    by_worker = _trials_by_worker(result, t0)
    machine_cores = (total - total0) / wall if wall else float("nan")
    emit({"part": "parallel", "workload": workload, "variant": variant, "rows": rows,
          "cols": cols, "trials": trials,
          "n_jobs": n_jobs, "wall_s": wall, "fit_sum_s": float(fits.sum()),
          "fit_median_s": float(fits.median()), "cpu_s": cpu, "cores_used": cpu / wall,
          "machine_busy_cores": (busy - busy0) / wall, "machine_cores": machine_cores,
          "others_cores": (busy - busy0 - cpu) / wall, "blas_threads_default": blas,
          "threads_after_search": threads_after_search,
          "by_worker": by_worker, "autoreg": autoreg.__version__})


def _trials_by_worker(result, t0: float) -> dict:
    """Per worker process: its trials and when its first one started (seconds after the
    search began): the second worker's start-up shows there. Best effort: the worker is read
    from the trial record autoreg keeps, whose layout may change."""
    import datetime

    start = datetime.datetime.now() - datetime.timedelta(seconds=time.perf_counter() - t0)
    out: dict = {}
    try:
        for t in result.study.get_trials(deepcopy=False):
            worker = str((t.user_attrs.get("autoreg") or {}).get("worker", "?"))
            w = out.setdefault(worker, {"trials": 0, "first_start_s": float("inf")})
            w["trials"] += 1
            if t.datetime_start is not None:
                w["first_start_s"] = min(w["first_start_s"],
                                         (t.datetime_start - start).total_seconds())
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        return {"error": repr(exc)}
    return out


def _steady(result) -> dict:
    """Per-trial figures from the trials' own timestamps (no fixed costs of the search)."""
    from optuna.trial import TrialState

    done = sorted((t for t in result.study.get_trials(deepcopy=False)
                   if t.state == TrialState.COMPLETE), key=lambda t: t.datetime_complete)
    fit = {int(r.trial): float(r.fit_seconds) for r in result.trials.itertuples()}
    if len(done) < 3:
        return {}
    span = (done[-1].datetime_complete - done[0].datetime_complete).total_seconds()
    cycle = span / (len(done) - 1)
    mean_fit = sum(fit.get(t.number, 0.0) for t in done[1:]) / (len(done) - 1)
    inside = [(t.datetime_complete - t.datetime_start).total_seconds() - fit.get(t.number, 0.0)
              for t in done]
    between = [(b.datetime_start - a.datetime_complete).total_seconds()
               for a, b in zip(done, done[1:], strict=False)]
    return {"cycle_s": cycle, "steady_overhead_s": cycle - mean_fit,
            "inside_overhead_s": median(inside), "between_s": median(between)}


def _sql_counter():
    """Count SQL statements (by verb and first table) through SQLAlchemy's engine events."""
    import re
    from collections import Counter

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts: Counter = Counter()

    def count(statement):
        words = statement.split()
        verb = words[0].upper() if words else "?"
        table_ = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement, re.IGNORECASE)
        counts[f"{verb} {table_.group(1) if table_ else ''}".strip()] += 1

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        count(statement)

    # autoreg's PostgreSQL journal calls psycopg directly (SQLAlchemy's psycopg dialect
    # executes through cursors, so nothing is counted twice).
    import psycopg

    execute = psycopg.Connection.execute

    def counted(self, query, *args, **kwargs):
        count(str(query))
        return execute(self, query, *args, **kwargs)

    psycopg.Connection.execute = counted
    return counts


def _focus(stats, n: int, top: int = 60) -> list[list]:
    """Cumulative milliseconds per trial of autoreg's and Optuna's own functions, and of the
    database driver's waiting, largest first."""
    rows = []
    for (path, _line, func), (_, calls, _, cum, _) in stats.stats.items():
        where = path.replace("\\", "/")
        for marker in ("/autoreg/", "/optuna/study/", "/optuna/storages/", "/optuna/samplers/",
                       "/psycopg/connection.py", "/sqlalchemy/orm/session.py"):
            if marker in where and not func.startswith("<"):
                short = where.split(marker.split("/")[1] + "/", 1)[-1]
                name = f"{marker.split('/')[1]}/{short}:{func}"
                rows.append([name, 1e3 * cum / n, calls / n])
                break
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def child_storage(kind: str, trials: int, url: str, profile: bool) -> None:
    _preimport(postgres=kind in ("postgresql", "pgjournal"))
    import autoreg

    storage = None if kind == "journal" else url
    if kind == "sqlite":
        storage = f"sqlite:///{os.environ['BENCH_TMP']}/studies.db"
    counts = _sql_counter() if profile else None
    prof = None
    cpu0, (busy0, _) = _cpu_seconds(), _machine_busy()
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    result = autoreg.search("diabetes", techniques=["l2"], n_trials=trials, sampler="random",
                            seed=0, storage=storage, log_mlflow=False)
    wall = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    # Other processes' CPU use meanwhile (in cores): a busy machine shows here.
    others = (_machine_busy()[0] - busy0 - (_cpu_seconds() - cpu0)) / wall
    fits = result.trials["fit_seconds"]
    n = len(result.trials)
    assert n == trials, (n, trials)
    payload = {"part": "storage", "kind": kind, "trials": n, "wall_s": wall,
               "fit_sum_s": float(fits.sum()), "wall_per_trial_s": wall / n,
               "fit_per_trial_s": float(fits.sum()) / n,
               "overhead_per_trial_s": (wall - float(fits.sum())) / n,
               "others_cores": others, **_steady(result), "autoreg": autoreg.__version__}
    if profile:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        payload["profile_text"] = out.getvalue()
        payload["profile_focus"] = _focus(stats, n)
        payload["sql_per_trial"] = {k: v / n for k, v in counts.most_common()}
        payload["sql_total_per_trial"] = sum(counts.values()) / n
    emit(payload)


# -- parent side -------------------------------------------------------------------------------
def _rotate(items, k):
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def _variant_env(variant: str) -> dict:
    if variant == "jobs2_spawn":
        return {"AUTOREG_WORKER_START": "spawn"}
    if variant == "jobs1_blasN":
        cores = str(os.cpu_count() or 1)
        return {k: cores for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {}


def run_parallel(reps: int, rows: int, cols: int, trials: int,
                 workload: str = "ridge", variants=PAR_VARIANTS) -> list[dict]:
    runs = []
    for rep in range(reps):
        for variant in _rotate(variants, rep):
            r = run_child(SCRIPT, ["parallel", variant, str(rows), str(cols), str(trials),
                                   workload], env=_variant_env(variant))
            r["rep"] = rep
            runs.append(r)
            joined = sorted(w["first_start_s"] for w in r["by_worker"].values()
                            if isinstance(w, dict))
            late = f"  last worker's first trial at {joined[-1]:.1f} s" if len(joined) > 1 else ""
            print(f"  rep {rep} {variant:12s} {r['wall_s']:7.2f} s  fits {r['fit_sum_s']:6.2f} s"
                  f"  cores used {r['cores_used']:.2f}  others {r['others_cores']:.2f}{late}",
                  flush=True)
    return runs


def summarize_parallel(runs: list[dict]) -> dict:
    summary = {}
    rows = []
    jobs2 = median([r["wall_s"] for r in runs if r["variant"] == "jobs2"])
    for variant in PAR_VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        wall = median([r["wall_s"] for r in mine])
        s = {"wall_median_s": wall, "wall_min_s": min(r["wall_s"] for r in mine),
             "wall_max_s": max(r["wall_s"] for r in mine),
             "fit_sum_median_s": median([r["fit_sum_s"] for r in mine]),
             "cores_used_median": median([r["cores_used"] for r in mine]),
             "others_cores_median": median([r["others_cores"] for r in mine]),
             "speedup_of_jobs2": wall / jobs2 if jobs2 else float("nan"), "reps": len(mine)}
        summary[variant] = s
        rows.append([variant, wall, s["wall_min_s"], s["wall_max_s"], s["fit_sum_median_s"],
                     s["cores_used_median"], s["others_cores_median"],
                     s["speedup_of_jobs2"] if variant != "jobs2" else float("nan")])
    print(table(["variant", "median s", "min s", "max s", "sum of fits s", "our cores",
                 "others' cores", "jobs2 speed-up"], rows))
    # Per-repetition ratios (each against the jobs2 run of the same repetition) are steadier
    # when the machine's load drifts between repetitions.
    for base in ("jobs1", "jobs2_spawn", "jobs1_blasN"):
        pairs = []
        for rep in sorted({r["rep"] for r in runs}):
            a = [r["wall_s"] for r in runs if r["rep"] == rep and r["variant"] == base]
            b = [r["wall_s"] for r in runs if r["rep"] == rep and r["variant"] == "jobs2"]
            if a and b:
                pairs.append(a[0] / b[0])
        if base in summary:
            summary[base]["speedup_per_rep"] = pairs
            summary[base]["speedup_median_of_reps"] = median(pairs)
    head = summary.get("jobs1", {}).get("speedup_of_jobs2", float("nan"))
    per_rep = summary.get("jobs1", {}).get("speedup_median_of_reps", float("nan"))
    spawn = summary.get("jobs2_spawn", {}).get("wall_median_s", float("nan"))
    jobs1 = summary.get("jobs1", {}).get("wall_median_s", float("nan"))
    summary["headline"] = {
        "speedup": head, "speedup_median_of_reps": per_rep,
        "speedup_spawned_worker": jobs1 / spawn if spawn else float("nan"),
        "target": TARGET_SPEEDUP, "met": head >= TARGET_SPEEDUP}
    print(f"speed-up of n_jobs=2 over n_jobs=1: {head:.2f}x (ratio of medians), {per_rep:.2f}x "
          f"(median of per-repetition ratios); with a spawned second worker "
          f"{summary['headline']['speedup_spawned_worker']:.2f}x; target >= {TARGET_SPEEDUP}x")
    return summary


def _fresh_database(base_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server of ``base_url``; return its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


def run_storage(reps: int, trials: int, profile: bool) -> tuple[list[dict], dict | None, str]:
    sys.path.insert(0, str(REPO / "tests"))
    import contextlib

    from postgres import NoPostgres, postgres_server

    runs, prof, note = [], None, ""
    with contextlib.ExitStack() as stack:
        try:
            base = stack.enter_context(postgres_server(database="bench_base", durable=True))
        except NoPostgres as exc:
            base, note = None, f"PostgreSQL skipped: {exc}"
            print(note, flush=True)
        kinds = [k for k in STORES if k not in ("postgresql", "pgjournal") or base]
        serial = 0

        def server_url(kind, name):
            if kind not in ("postgresql", "pgjournal"):
                return "-"
            url = _fresh_database(base, name)
            return "journal+" + url if kind == "pgjournal" else url

        for rep in range(reps):
            for kind in _rotate(kinds, rep):
                serial += 1
                url = server_url(kind, f"bench_{serial}")
                r = run_child(SCRIPT, ["storage", kind, str(trials), url, "0"])
                r["rep"] = rep
                runs.append(r)
                print(f"  rep {rep} {STORE_LABELS[kind]:20s} {r['wall_s']:6.2f} s  "
                      f"overhead/trial {1e3 * r['overhead_per_trial_s']:6.2f} ms  steady "
                      f"{1e3 * r.get('steady_overhead_s', float('nan')):6.2f} ms  others' "
                      f"cores {r.get('others_cores', float('nan')):.2f}", flush=True)
        ratio = _storage_ratio(runs, "overhead_per_trial_s")
        if base and (profile or ratio > TARGET_STORAGE_RATIO):
            print(f"  profiling one search per storage (ratio {ratio:.2f})", flush=True)
            prof = {}
            for kind in ("pgjournal", "postgresql", "sqlite", "journal"):
                url = server_url(kind, f"bench_profile_{kind}")
                prof[kind] = run_child(SCRIPT, ["storage", kind, str(trials), url, "1"])
    return runs, prof, note


def _storage_ratio(runs, key, kind="pgjournal") -> float:
    pg = [r[key] for r in runs if r["kind"] == kind and key in r]
    journal = [r[key] for r in runs if r["kind"] == "journal" and key in r]
    if not pg or not journal:
        return float("nan")
    return median(pg) / median(journal)


def summarize_storage(runs: list[dict]) -> dict:
    summary, rows = {}, []
    for kind in STORES:
        mine = [r for r in runs if r["kind"] == kind]
        if not mine:
            continue
        s = {k: median([r[k] for r in mine if k in r])
             for k in ("wall_s", "wall_per_trial_s", "fit_per_trial_s", "overhead_per_trial_s",
                       "steady_overhead_s", "inside_overhead_s", "between_s",
                       "others_cores")}
        s["reps"] = len(mine)
        journal = summary.get("journal", s if kind == "journal" else None)
        for key, ratio in (("overhead_per_trial_s", "ratio_vs_journal"),
                           ("steady_overhead_s", "steady_ratio_vs_journal")):
            s[ratio] = s[key] / journal[key] if journal else float("nan")
        summary[kind] = s
        ms = 1e3
        rows.append([STORE_LABELS[kind], s["wall_s"], ms * s["wall_per_trial_s"],
                     ms * s["fit_per_trial_s"], ms * s["overhead_per_trial_s"],
                     s["ratio_vs_journal"], ms * s["steady_overhead_s"],
                     s["steady_ratio_vs_journal"], ms * s["inside_overhead_s"],
                     ms * s["between_s"], s["others_cores"]])
    print(table(["storage", "median s", "wall/trial ms", "fit/trial ms", "overhead/trial ms",
                 "x journal file", "steady ms", "steady x journal", "in-trial ms", "between ms",
                 "others' cores"], rows))
    if "postgresql" in summary:
        rdb = summary["postgresql"]
        print(f"PostgreSQL (RDB) per-trial overhead: {rdb['ratio_vs_journal']:.2f}x the "
              f"journal file's, {rdb['steady_ratio_vs_journal']:.2f}x in the steady state")
    if "pgjournal" in summary:
        ratio = summary["pgjournal"]["ratio_vs_journal"]
        steady = summary["pgjournal"]["steady_ratio_vs_journal"]
        summary["headline"] = {"pgjournal_over_journal": ratio,
                               "steady_pgjournal_over_journal": steady,
                               "target": TARGET_STORAGE_RATIO,
                               "met": ratio <= TARGET_STORAGE_RATIO}
        print(f"PostgreSQL (journal) per-trial overhead: {ratio:.2f}x the journal file's "
              f"(headline), {steady:.2f}x in the steady state; target <= "
              f"{TARGET_STORAGE_RATIO}x")
    return summary


def report_profile(prof: dict, quick: bool) -> dict:
    out = {}
    text = []
    for kind, r in prof.items():
        sql = r.get("sql_per_trial", {})
        out[kind] = {"overhead_per_trial_s": r["overhead_per_trial_s"],
                     "steady_overhead_s": r.get("steady_overhead_s"),
                     "sql_total_per_trial": r.get("sql_total_per_trial"),
                     "sql_per_trial": sql, "focus_ms_per_trial": r.get("profile_focus")}
        print(f"\n{kind} under cProfile: overhead {1e3 * r['overhead_per_trial_s']:.1f} ms per "
              f"trial, {r.get('sql_total_per_trial', 0):.1f} SQL statements per trial")
        print(table(["function (cumulative)", "ms/trial", "calls/trial"],
                    r.get("profile_focus", [])[:25]))
        if sql:
            print(table(["SQL statement", "per trial"], [[k, v] for k, v in
                                                         list(sql.items())[:14]]))
        text.append(f"==== {kind} ====\n{r.get('profile_text', '')}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("workers_profile_quick.txt" if quick else "workers_profile.txt")
    path.write_text("\n".join(text))
    print(f"wrote {path}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 6,000 x 200 and 16 trials; 40 storage trials; 1 rep")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 if quick)")
    ap.add_argument("--part", choices=("parallel", "storage", "both"), default="both")
    ap.add_argument("--rows", type=int, default=None, help="generated rows (default 15000)")
    ap.add_argument("--cols", type=int, default=None, help="generated columns (default 300)")
    ap.add_argument("--trials", type=int, default=None, help="parallel trials (default 200)")
    ap.add_argument("--workload", choices=("ridge", "mlp"), default="ridge",
                    help="parallel part: the generated ridge regression, or digits with the "
                    "mlp family (default techniques, one torch thread per worker)")
    ap.add_argument("--storage-trials", type=int, default=None, help="default 150")
    ap.add_argument("--profile", action="store_true",
                    help="profile a PostgreSQL search even within the target")
    args = ap.parse_args()
    if args.child:
        part, *rest = args.child
        if part == "parallel":
            variant, rows, cols, trials, workload = rest
            child_parallel(variant, int(rows), int(cols), int(trials), workload)
        else:
            kind, trials, url, profile = rest
            child_storage(kind, int(trials), url, profile == "1")
        return
    quick = args.quick
    reps = args.reps or (1 if quick else 5)
    rows = args.rows or (6000 if quick else 15000)
    cols = args.cols or (200 if quick else 300)
    trials = args.trials or (16 if quick else 200)
    storage_trials = args.storage_trials or (40 if quick else 150)
    payload = {"environment": environment(), "quick": quick, "reps": reps}
    if args.part in ("parallel", "both"):
        what = ("digits, mlp family, default techniques" if args.workload == "mlp" else
                f"{rows:,} x {cols} regression, techniques=['l2'], 5-fold CV")
        print(f"parallel: {what}, random sampler, {trials} trials, {reps} reps", flush=True)
        runs = run_parallel(reps, rows, cols, trials, args.workload)
        payload["parallel"] = {"workload": args.workload, "rows": rows, "cols": cols,
                               "trials": trials, "runs": runs,
                               "summary": summarize_parallel(runs)}
    if args.part in ("storage", "both"):
        print(f"storage: diabetes, techniques=['l2'], random sampler, {storage_trials} trials, "
              f"1 worker, {reps} reps", flush=True)
        runs, prof, note = run_storage(reps, storage_trials, args.profile)
        payload["storage"] = {"trials": storage_trials, "runs": runs, "note": note,
                              "summary": summarize_storage(runs)}
        if prof:
            payload["storage"]["profile"] = report_profile(prof, quick)
    payload["environment"]["loadavg_end"] = list(os.getloadavg())
    name = "workers_quick" if quick else "workers"
    if args.workload != "ridge" and args.part == "parallel":
        name += f"_{args.workload}"
    path = write_json(name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
