"""Preprocessing: statistics from the fitted rows only, sparse stays sparse, awkward columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from autoreg.errors import DataError
from autoreg.prep import MISSING, Prep


def dense(Z) -> np.ndarray:
    return Z.toarray() if sp.issparse(Z) else np.asarray(Z)


@pytest.fixture
def shifted():
    """100 rows whose second half is shifted and more spread than the first."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    X[50:] = X[50:] * 4 + 10
    X[::9, 1] = np.nan
    return X


def test_statistics_come_from_the_fitted_rows_only(shifted):
    part = shifted[:50]
    prep = Prep().fit(part)
    full = Prep().fit(shifted)
    np.testing.assert_allclose(prep.fill, np.nanmedian(part, axis=0))
    filled = np.where(np.isnan(part), prep.fill, part)
    np.testing.assert_allclose(prep.mean, filled.mean(axis=0))
    np.testing.assert_allclose(prep.scale, filled.std(axis=0))
    assert np.all(np.abs(prep.mean - full.mean) > 4)
    assert np.all(np.abs(prep.fill - full.fill) > 1)
    assert np.all(prep.scale < full.scale)
    # New rows are scaled with the fitted rows' statistics, not their own.
    Z = prep.transform(shifted)
    np.testing.assert_allclose(Z[:50].mean(axis=0), 0, atol=1e-12)
    assert np.all(Z[50:].mean(axis=0) > 5)


def test_frame_statistics_come_from_the_fitted_rows_only():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 100.0, 200.0, np.nan],
                       "c": ["a", "a", None, "b", "z", "z"]})
    prep = Prep().fit(df.iloc[:3])
    assert prep.fill[0] == 1.5
    assert prep.categories == [[MISSING, "a"]]
    Z = dense(prep.transform(df))
    assert Z.shape == (6, 1 + 2)
    # "b" and "z" were never fitted: their rows have no category set.
    np.testing.assert_array_equal(Z[3:, 1:], 0)
    np.testing.assert_array_equal(Z[2, 1:], [1, 0])  # missing is its own category


def forbid_densify(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    classes = {k for c in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array)
               for k in c.__mro__}
    patched = 0
    for klass in classes:
        for name in ("toarray", "todense"):
            if name in vars(klass):
                monkeypatch.setattr(klass, name, boom)
                patched += 1
    assert patched >= 2


def test_sparse_input_stays_sparse_through_fit_and_transform(monkeypatch):
    X = sp.random(200, 5000, density=0.002, format="csr", random_state=0) * 3
    truth_scale = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel()
                          - np.asarray(X.mean(axis=0)).ravel() ** 2)
    before = X.data.copy()
    forbid_densify(monkeypatch)
    with pytest.raises(AssertionError, match="densified"):
        X.toarray()  # the trap is armed
    prep = Prep().fit(X)
    Z = prep.transform(X)
    assert sp.issparse(Z) and Z.format == "csr"
    assert Z.shape == X.shape and Z.nnz == X.nnz
    np.testing.assert_array_equal(Z.indices, X.indices)
    expected_scale = np.where(truth_scale > 0, truth_scale, 1.0)
    np.testing.assert_allclose(prep.scale, expected_scale, rtol=1e-9)
    np.testing.assert_allclose(Z.data, X.data / expected_scale[X.indices], rtol=1e-9)
    assert not np.any(prep.mean)  # centring would make every zero non-zero
    for other in (X.tocsc(), X.tocoo()):
        W = prep.transform(other)
        assert sp.issparse(W) and W.nnz == X.nnz
    np.testing.assert_array_equal(X.data, before)  # the caller's matrix is left as it was


# pandas deprecates unknown values in a Categorical: its deprecations are errors here (and not
# every warning: a connection an earlier test left to the garbage collector is not this test's).
@pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning",
                            "error::PendingDeprecationWarning")
def test_one_hot_columns():
    df = pd.DataFrame({"size": ["S", "M", "L", "M", None, "S"],
                       "n": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       "ok": [True, False, True, True, False, True]})
    prep = Prep().fit(df)
    assert prep.categories == [[MISSING, "L", "M", "S"]]
    assert list(prep.num_cols) == [1, 2] and prep.cat_cols == [0]
    assert prep.n_features == 2 + 4
    np.testing.assert_array_equal(prep.feature_columns(), [1, 2, 0, 0, 0, 0])
    Z = dense(prep.transform(df))
    onehot = Z[:, 2:]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1)
    np.testing.assert_array_equal(onehot.argmax(axis=1), [3, 2, 1, 2, 0, 3])
    new = pd.DataFrame({"size": ["XL", "L"], "n": [np.nan, 1.0], "ok": [True, False]})
    Zn = dense(prep.transform(new))
    np.testing.assert_array_equal(Zn[:, 2:], [[0, 0, 0, 0], [0, 1, 0, 0]])
    assert Zn[0, 0] == pytest.approx((3.5 - 3.5) / np.std([1, 2, 3, 4, 5, 6]))


def test_many_categories_stay_sparse_few_become_dense():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({"id": [f"u{i}" for i in range(300)], "x": rng.standard_normal(300)})
    narrow = pd.DataFrame({"c": rng.choice(["a", "b"], 300), "x": rng.standard_normal(300)})
    Zw = Prep().fit(wide).transform(wide)
    Zn = Prep().fit(narrow).transform(narrow)
    assert sp.issparse(Zw) and Zw.shape == (300, 301)
    assert isinstance(Zn, np.ndarray) and Zn.shape == (300, 3)


def test_all_missing_and_constant_columns_give_finite_output():
    df = pd.DataFrame({
        "empty": [np.nan] * 5,
        "const": [7.0] * 5,
        "x": [1.0, np.nan, 3.0, 4.0, 5.0],
        "no_label": [None] * 5,
        "one_label": ["k"] * 5,
    })
    prep = Prep().fit(df)
    Z = dense(prep.transform(df))
    assert Z.shape == (5, 3 + 1 + 1)
    assert np.isfinite(Z).all()
    np.testing.assert_array_equal(Z[:, 0], 0)  # nothing to learn from an empty column
    np.testing.assert_array_equal(Z[:, 1], 0)  # nor from a constant one
    assert prep.fill[0] == 0 and prep.scale[0] == 1 and prep.scale[1] == 1
    Z_new = dense(prep.transform(df.assign(empty=[1.0, 2, 3, 4, 5], const=8.0)))
    assert np.isfinite(Z_new).all()
    X = np.column_stack([np.full(4, np.nan), np.ones(4), np.arange(4.0)])
    assert np.isfinite(Prep().fit(X).transform(X)).all()


def test_array_rows_with_missing_values_get_the_median():
    X = np.array([[1.0], [2.0], [10.0], [np.nan]])
    prep = Prep().fit(X)
    assert prep.fill[0] == 2.0
    Z = prep.transform(np.array([[np.nan], [2.0]]))
    assert Z[0, 0] == Z[1, 0]


def test_a_frame_prep_takes_raw_arrays_in_the_same_column_order():
    df = pd.DataFrame({"c": ["a", "b", "a", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    prep = Prep().fit(df)
    np.testing.assert_array_equal(dense(prep.transform(df.to_numpy(dtype=object))),
                                  dense(prep.transform(df)))


def test_date_columns_are_refused_with_the_column_name():
    df = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=3), "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="'when' holds dates"):
        Prep().fit(df)
