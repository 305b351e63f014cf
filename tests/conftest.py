"""Shared fixtures: every test runs in its own folder with its own autoreg home; one MLflow
SQLite store serves the whole session (creating one costs a second or two)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so that a run never fails by the luck of
# the draw; HYPOTHESIS_PROFILE=explore draws new ones each time, to look for more.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOREG_HOME", str(tmp_path / ".autoreg"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.delenv("AUTOREG_DISABLE_PLUGINS", raising=False)
    return tmp_path


@pytest.fixture
def tiny_regression():
    """60 rows, 6 numeric columns of which 2 carry the signal."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 6))
    y = 3 * X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(60)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), y


@pytest.fixture
def tiny_mixed():
    """A DataFrame with numeric, missing and categorical columns and a binary string target."""
    rng = np.random.default_rng(1)
    n = 80
    df = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "income": rng.normal(50, 15, n),
        "city": rng.choice(["paris", "rome", "oslo"], n),
        "noise": rng.standard_normal(n),
    })
    df.loc[::7, "income"] = np.nan
    logit = 0.15 * (df["age"] - 40) + (df["city"] == "rome") * 2.0 - 1.0
    df["label"] = np.where(logit + rng.logistic(size=n) > 0, "yes", "no")
    return df
