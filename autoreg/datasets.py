"""Built-in datasets: the ones scikit-learn ships, and generated sparse regressions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

DEMO = "diabetes"


def _sklearn(loader_name: str):
    def load():
        import sklearn.datasets as skd

        bunch = getattr(skd, loader_name)(as_frame=True)
        return bunch.data, bunch.target.to_numpy()

    return load


def synthetic_sparse(n_samples: int = 400, n_features: int = 2000, n_informative: int = 20,
                     noise: float = 1.0, seed: int = 0):
    """A wide regression whose truth uses ``n_informative`` of ``n_features`` columns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    coef = np.zeros(n_features)
    idx = rng.choice(n_features, n_informative, replace=False)
    coef[idx] = rng.uniform(1.0, 3.0, n_informative) * rng.choice([-1, 1], n_informative)
    y = X @ coef + noise * rng.standard_normal(n_samples)
    cols = [f"x{i}" for i in range(n_features)]
    return pd.DataFrame(X, columns=cols), y


def sparse_csr_regression(n_samples: int = 50_000, n_features: int = 100_000,
                          density: float = 0.0005, n_informative: int = 50, noise: float = 0.5,
                          seed: int = 0):
    """A scipy CSR regression problem with a sparse truth, generated without densifying."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.standard_normal(k), dtype=np.float64)
    coef = np.zeros(n_features)
    # Informative columns are drawn among well-populated ones so that the truth is learnable.
    nnz_per_col = np.diff(X.tocsc().indptr)
    candidates = np.argsort(-nnz_per_col, kind="stable")[: max(n_informative * 20, 1)]
    idx = rng.choice(candidates, n_informative, replace=False)
    coef[idx] = rng.uniform(1.0, 3.0, n_informative) * rng.choice([-1, 1], n_informative)
    y = X @ coef + noise * rng.standard_normal(n_samples)
    return X, y


BUILTIN = {
    "diabetes": _sklearn("load_diabetes"),
    "breast_cancer": _sklearn("load_breast_cancer"),
    "digits": _sklearn("load_digits"),
    "wine": _sklearn("load_wine"),
    "iris": _sklearn("load_iris"),
    "synthetic_sparse": synthetic_sparse,
    "sparse_csr": lambda: sparse_csr_regression(n_samples=5_000, n_features=20_000, density=0.001),
}
