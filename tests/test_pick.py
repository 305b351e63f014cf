"""Pick rules choose from the front the way their documentation says."""

from __future__ import annotations

import numpy as np
import pytest

import autoreg
from autoreg.errors import StudyError, UsageError


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("pick")
    old = os.environ.get("AUTOREG_HOME")
    os.environ["AUTOREG_HOME"] = str(home)
    try:
        return autoreg.search("diabetes", n_trials=40, log_mlflow=False, seed=1)
    finally:
        if old is None:
            os.environ.pop("AUTOREG_HOME")
        else:
            os.environ["AUTOREG_HOME"] = old


def test_within_is_smallest_model_near_best(result):
    front = result.front
    best = front["error"].min()
    for tol in (0.0, 0.01, 0.05, 0.5):
        pick = result.pick("within", tolerance=tol)
        assert pick["error"] <= best * (1 + tol) + 1e-12
        near = front[front["error"] <= best * (1 + tol)]
        assert pick["size_bytes"] == near["size_bytes"].min()
    assert result.pick("within", tolerance=0.0)["error"] == best
    # A looser tolerance never picks a larger model.
    sizes = [result.pick("within", tolerance=t)["size_bytes"] for t in (0.0, 0.01, 0.05, 0.5)]
    assert sizes == sorted(sizes, reverse=True)


def test_one_standard_error(result):
    front = result.front
    best = front.loc[front["error"].idxmin()]
    pick = result.pick("1se")
    assert pick["error"] <= best["error"] + best["error_se"]
    assert np.isfinite(best["error_se"]) and best["error_se"] > 0
    near = front[front["error"] <= best["error"] + best["error_se"]]
    assert pick["size_bytes"] == near["size_bytes"].min()


def test_knee_is_a_compromise(result):
    pick = result.pick("knee")
    assert pick["trial"] in set(result.front["trial"])
    front = result.front
    if len(front) > 2:
        # Neither extreme alone: not the most accurate and not the smallest model.
        assert (pick["error"] > front["error"].min()
                or pick["size_bytes"] > front["size_bytes"].min())


def test_pick_constraints(result):
    limit = int(result.front["size_bytes"].median())
    pick = result.pick("within", max_size=limit)
    assert pick["size_bytes"] <= limit
    assert result.pick(min_sparsity=0.5)["sparsity"] >= 0.5
    with pytest.raises(StudyError, match="no front model"):
        result.pick(max_size=1)
    with pytest.raises(UsageError, match="unknown pick rule"):
        result.pick("best")


def test_model_of_unknown_trial(result):
    with pytest.raises(StudyError, match="trial 999"):
        result.model(999)
