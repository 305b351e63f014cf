"""Which Optuna sampler gives autoreg the best Pareto front? TPE (the default) vs NSGA-II vs random.

For each dataset, sampler (``tpe``, ``nsga2``, ``random``), seed and budget N, one
``autoreg.search(dataset, n_trials=N, sampler=..., seed=..., log_mlflow=False)`` runs in a fresh
AUTOREG_HOME. Its front (``error``, ``sparsity``, ``size_bytes``) is scored by hypervolume in a
normalized space where every objective is minimized: ``error``, ``1 - sparsity``, ``size_bytes``,
each scaled to [0, 1] with the min and max over the front points of *all* runs on that dataset
(every sampler, seed and budget), reference point (1.1, 1.1, 1.1). Larger is better. The
hypervolume is Optuna's own exact one (``optuna._hypervolume.compute_hypervolume``) when it
imports, else the exact 3-D sweep below.

The seed also fixes the test split and the CV folds, so runs with the same seed are paired: the
``wins`` column counts the seeds on which a sampler had the largest hypervolume of the three.
Runs are interleaved (seed, then budget, then sampler) so that the load of this shared machine
falls on every sampler alike; one small search runs first, untimed, to pay the import costs.

Because a seeded search is deterministic, the N=60 run must equal the first 60 trials of the N=150
run with the same sampler and seed; that is checked too (``prefix_consistent`` in the JSON).

    python tests/benchmarks/bench_samplers.py    # diabetes, breast_cancer; N=60,150; seeds 0-2
    python tests/benchmarks/bench_samplers.py --datasets diabetes,breast_cancer,wine
    python tests/benchmarks/bench_samplers.py --quick    # smoke test: diabetes, N=15/30, seeds 0-1

Writes tests/benchmarks/results/samplers.json (samplers_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, median, table, write_json  # noqa: E402

SAMPLERS = ("tpe", "nsga2", "random")
REFERENCE = 1.1


# -- hypervolume --------------------------------------------------------------------------------
def hv_exact_3d(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimization points in 3-D: sweep z, add 2-D slabs."""
    pts = np.asarray(points, dtype=float)
    pts = pts[np.all(pts < ref, axis=1)]
    if not len(pts):
        return 0.0
    zs = np.unique(pts[:, 2])
    total = 0.0
    for k, z in enumerate(zs):
        z_next = zs[k + 1] if k + 1 < len(zs) else ref[2]
        slab = pts[pts[:, 2] <= z][:, :2]
        slab = slab[np.lexsort((slab[:, 1], slab[:, 0]))]
        # 2-D area of the slice: a staircase over x, keeping the running minimum of y.
        stairs, best_y = [], ref[1]
        for x, y in slab:
            if y < best_y:
                stairs.append((x, y))
                best_y = y
        area = 0.0
        for i, (x, y) in enumerate(stairs):
            x_next = stairs[i + 1][0] if i + 1 < len(stairs) else ref[0]
            area += (x_next - x) * (ref[1] - y)
        total += area * (z_next - z)
    return float(total)


def _hypervolume_impl():
    try:
        from optuna._hypervolume import compute_hypervolume

        return "optuna._hypervolume.compute_hypervolume", compute_hypervolume
    except ImportError:
        return "bench_samplers.hv_exact_3d", hv_exact_3d


HV_NAME, HV = _hypervolume_impl()


def to_loss(front: list[dict]) -> np.ndarray:
    """Front rows as minimization vectors (error, 1 - sparsity, size_bytes)."""
    return np.array([[p["error"], 1.0 - p["sparsity"], p["size_bytes"]] for p in front],
                    dtype=float).reshape(-1, 3)


def normalizer(all_points: np.ndarray):
    lo, hi = all_points.min(axis=0), all_points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lo, hi, lambda pts: (pts - lo) / span


def non_dominated(points: np.ndarray) -> np.ndarray:
    """The unique non-dominated rows (minimization), sorted lexicographically."""
    pts = np.unique(points, axis=0)
    keep = [not np.any(np.all(pts <= p, axis=1) & np.any(pts < p, axis=1)) for p in pts]
    return pts[np.array(keep, dtype=bool)] if len(pts) else pts


# -- one search ---------------------------------------------------------------------------------
def run_one(dataset: str, sampler: str, seed: int, n_trials: int) -> dict:
    import autoreg

    home = tempfile.mkdtemp(prefix="autoreg-bench-samplers-")
    os.environ["AUTOREG_HOME"] = home
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chosen = sampler
            if sampler == "nsga2":  # not offered by name: shown for the record, as an object
                import optuna

                chosen = optuna.samplers.NSGAIISampler(seed=seed)
            elif sampler.startswith("tpe") and sampler != "tpe":  # tpe<N>: N random trials first
                import optuna

                chosen = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                                    n_startup_trials=int(sampler[3:]))
            result = autoreg.search(dataset, n_trials=n_trials, sampler=chosen, seed=seed,
                                    log_mlflow=False)
        wall = time.perf_counter() - t0
        cols = ["trial", "recipe", "error", "sparsity", "size_bytes"]
        front = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                 for row in result.front[cols].to_dict("records")]
        trials = result.trials[["trial", "error", "sparsity", "size_bytes"]]
        return {
            "dataset": dataset, "sampler": sampler, "seed": seed, "n_trials": n_trials,
            "wall_s": wall,
            "n_complete": int(len(result.trials)), "n_failed": int(len(result.failed)),
            "recipes": result.trials["recipe"].value_counts().sort_index().to_dict(),
            "front_size": len(front),
            "best_error": float(min(p["error"] for p in front)),
            "front": front,
            "_trials": trials.to_numpy(dtype=float),  # for the prefix check; not written
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def prefix_front(trials: np.ndarray, n: int) -> np.ndarray:
    first = trials[trials[:, 0] < n]
    return non_dominated(np.column_stack([first[:, 1], 1.0 - first[:, 2], first[:, 3]]))


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: diabetes, N=15/30, seeds 0-1")
    ap.add_argument("--datasets", default=None, help="comma list (default diabetes,breast_cancer)")
    ap.add_argument("--budgets", default=None, help="comma list of n_trials (default 60,150)")
    ap.add_argument("--seeds", default=None, help="comma list (default 0,1,2)")
    ap.add_argument("--samplers", default=None,
                    help="comma list (default tpe,nsga2,random; tpe25 = TPE with 25 random "
                    "startup trials)")
    args = ap.parse_args(argv)

    datasets = ["diabetes"] if args.quick else ["diabetes", "breast_cancer"]
    budgets, seeds = ([15, 30], [0, 1]) if args.quick else ([60, 150], [0, 1, 2])
    if args.datasets:
        datasets = args.datasets.split(",")
    if args.budgets:
        budgets = sorted(int(b) for b in args.budgets.split(","))
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    samplers = args.samplers.split(",") if args.samplers else list(SAMPLERS)

    if HV_NAME != "bench_samplers.hv_exact_3d":  # keep the fallback honest
        rng = np.random.default_rng(0)
        for _ in range(20):
            pts = rng.random((int(rng.integers(1, 30)), 3))
            ref = np.full(3, REFERENCE)
            assert abs(HV(pts, ref) - hv_exact_3d(pts, ref)) < 1e-9
    print(f"hypervolume: {HV_NAME}; datasets {datasets}, budgets {budgets}, seeds {seeds}",
          flush=True)

    run_one("diabetes", "tpe", 0, 3)  # warm-up: imports, plugin discovery; not timed
    t_start = time.perf_counter()
    runs: list[dict] = []
    for ds in datasets:
        for seed in seeds:
            for n in budgets:
                for s in samplers:
                    r = run_one(ds, s, seed, n)
                    runs.append(r)
                    print(f"  {ds:14s} {s:6s} N={n:<4d} seed={seed}  front {r['front_size']:3d}"
                          f"  best error {r['best_error']:.5g}  {r['wall_s']:6.1f} s"
                          f"  (elapsed {time.perf_counter() - t_start:5.0f} s)", flush=True)
    total_s = time.perf_counter() - t_start

    # Normalize per dataset over every run's front, then score.
    norms = {}
    for ds in datasets:
        pts = np.vstack([to_loss(r["front"]) for r in runs if r["dataset"] == ds])
        lo, hi, scale = normalizer(pts)
        norms[ds] = {"min": lo.tolist(), "max": hi.tolist(), "scale": scale}
    ref = np.full(3, REFERENCE)
    for r in runs:
        r["hypervolume"] = float(HV(norms[r["dataset"]]["scale"](to_loss(r["front"])), ref))

    # Seeded determinism: the small budget's front equals the first trials of the large one.
    index = {(r["dataset"], r["sampler"], r["seed"], r["n_trials"]): r for r in runs}
    prefix = []
    for (ds, s, seed, n), r in index.items():
        for big in budgets:
            if big > n and (ds, s, seed, big) in index:
                got = non_dominated(to_loss(r["front"]))
                want = prefix_front(index[(ds, s, seed, big)]["_trials"], n)
                ok = got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-9))
                prefix.append({"dataset": ds, "sampler": s, "seed": seed, "n": n,
                               "of": big, "consistent": ok})

    headers = ["dataset", "sampler", "N", "HV med", "HV min", "HV max", "wins",
               "best err med", "front med", "wall s med"]
    rows, summary = [], []
    for ds in datasets:
        for n in budgets:
            group = [r for r in runs if r["dataset"] == ds and r["n_trials"] == n]
            winners = {}
            for seed in seeds:
                by_seed = [r for r in group if r["seed"] == seed]
                if by_seed:
                    top = max(r["hypervolume"] for r in by_seed)
                    for r in by_seed:
                        if r["hypervolume"] >= top - 1e-12:
                            winners[r["sampler"]] = winners.get(r["sampler"], 0) + 1
            for s in samplers:
                mine = [r for r in group if r["sampler"] == s]
                hv = [r["hypervolume"] for r in mine]
                row = {
                    "dataset": ds, "sampler": s, "n_trials": n, "seeds": [r["seed"] for r in mine],
                    "hv_median": median(hv), "hv_min": min(hv), "hv_max": max(hv),
                    "hv_wins": winners.get(s, 0),
                    "best_error_median": median([r["best_error"] for r in mine]),
                    "front_size_median": median([r["front_size"] for r in mine]),
                    "wall_s_median": median([r["wall_s"] for r in mine]),
                }
                summary.append(row)
                rows.append([ds, s, n, row["hv_median"], row["hv_min"], row["hv_max"],
                             f"{row['hv_wins']}/{len(seeds)}", row["best_error_median"],
                             row["front_size_median"], row["wall_s_median"]])
    print()
    print(table(headers, rows))
    n_ok = sum(p["consistent"] for p in prefix)
    print(f"\nprefix check (N={budgets[0]} run == first {budgets[0]} trials of the larger run): "
          f"{n_ok}/{len(prefix)} consistent")
    print(f"total {total_s:.0f} s; hypervolume by {HV_NAME}, reference {REFERENCE} per axis")

    for r in runs:
        r.pop("_trials", None)
    payload = {
        "benchmark": "samplers",
        "quick": args.quick,
        "config": {"datasets": datasets, "samplers": samplers, "budgets": budgets,
                   "seeds": seeds, "log_mlflow": False},
        "method": {"hypervolume": HV_NAME, "reference_point": [REFERENCE] * 3,
                   "space": ["error", "1 - sparsity", "size_bytes"],
                   "normalization": "per dataset, min-max over the front points of all runs"},
        "normalization": {ds: {"min": v["min"], "max": v["max"]} for ds, v in norms.items()},
        "summary": summary,
        "prefix_consistent": prefix,
        "runs": runs,
        "total_s": total_s,
        "environment": environment(),
    }
    path = write_json("samplers_quick" if args.quick else "samplers", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
