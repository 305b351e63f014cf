"""Predictors built from a fit: raw rows in, the sklearn model's predictions out, file or memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Lasso, LogisticRegression

import autoreg
from autoreg import export
from autoreg.errors import DataError, ExportFormatError
from autoreg.model import LinearPredictor, from_export
from autoreg.prep import Prep


# -- tiny data ----------------------------------------------------------------------------------
def mixed_frame(n: int, seed: int) -> pd.DataFrame:
    """Numeric columns with holes, a string column with holes, and a bool column."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "city": rng.choice(["paris", "rome", "oslo"], n),
        "income": rng.normal(50, 15, n),
        "member": rng.random(n) < 0.5,
        "shade": rng.choice(["red", "blue"], n),
        "noise": rng.standard_normal(n),
    })
    df.loc[::7, "income"] = np.nan
    df.loc[3::9, "city"] = None
    return df


def frame_signal(df: pd.DataFrame) -> np.ndarray:
    return (0.2 * (df["age"].to_numpy() - 40) + 2.0 * (df["city"] == "rome").to_numpy()
            - 1.5 * (df["city"] == "oslo").to_numpy() + 0.05 * df["income"].fillna(50).to_numpy())


@pytest.fixture(scope="module")
def frames():
    return mixed_frame(120, seed=1), mixed_frame(40, seed=2)


def fit_linear(prep: Prep, est, X, y, task: str, classes=None) -> LinearPredictor:
    est.fit(prep.transform(X), y)
    coef = np.asarray(est.coef_)
    coef = coef.T if coef.ndim == 2 else coef  # sklearn: outputs x features; ours: the transpose
    return LinearPredictor.from_fit(prep, coef, est.intercept_, task, classes)


@pytest.fixture(scope="module")
def regression(frames):
    train, test = frames
    y = frame_signal(train) + 0.1 * np.random.default_rng(0).standard_normal(len(train))
    prep = Prep().fit(train)
    lasso = Lasso(alpha=0.05)
    return fit_linear(prep, lasso, train, y, "regression"), prep, lasso, test


@pytest.fixture(scope="module")
def binary(frames):
    train, test = frames
    y = np.where(frame_signal(train) > frame_signal(train).mean(), "yes", "no")
    prep = Prep().fit(train)
    clf = LogisticRegression(C=1.0, max_iter=1000)
    return fit_linear(prep, clf, train, y, "binary", np.unique(y)), prep, clf, test


@pytest.fixture(scope="module")
def multiclass(frames):
    train, test = frames
    s = frame_signal(train)
    y = np.select([s < np.quantile(s, 0.33), s < np.quantile(s, 0.66)], ["low", "mid"], "high")
    prep = Prep().fit(train)
    clf = LogisticRegression(C=1.0, max_iter=2000)
    return fit_linear(prep, clf, train, y, "multiclass", np.unique(y)), prep, clf, test


@pytest.fixture(scope="module")
def dense_array():
    rng = np.random.default_rng(3)
    X = rng.normal(5, 3, (80, 5))
    y = X @ np.array([1.0, 0.0, -2.0, 0.0, 0.5]) + 0.1 * rng.standard_normal(80)
    X[::6, 2] = np.nan
    prep = Prep().fit(X[:60])
    lasso = Lasso(alpha=0.01)
    return fit_linear(prep, lasso, X[:60], y[:60], "regression"), prep, lasso, X[60:]


@pytest.fixture(scope="module")
def sparse_csr():
    rng = np.random.default_rng(4)
    X = sp.random(100, 40, density=0.1, format="csr", random_state=rng)
    y = X @ rng.standard_normal(40) + 0.05 * rng.standard_normal(100)
    prep = Prep().fit(X[:70])
    lasso = Lasso(alpha=0.001)
    return fit_linear(prep, lasso, X[:70], y[:70], "regression"), prep, lasso, X[70:]


def scale_of(values) -> float:
    return float(np.max(np.abs(values))) + 1.0


# -- predictions on raw rows --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["regression", "dense_array", "sparse_csr"])
def test_raw_rows_predict_like_sklearn_on_preprocessed_rows(case, request):
    predictor, prep, est, rows = request.getfixturevalue(case)
    want = est.predict(prep.transform(rows))
    got = predictor.predict(rows)
    # Weights are stored as float32: agreement to float32 precision, not bit for bit.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale_of(want))
    assert 0 < predictor.n_features_used


def test_sparse_rows_in_any_format_predict_the_same_without_densifying(sparse_csr, monkeypatch):
    predictor, prep, lasso, rows = sparse_csr
    want = predictor.predict(rows)
    forbid_densify(monkeypatch)
    for converted in (rows.tocsc(), rows.tocoo(), sp.csr_array(rows)):
        np.testing.assert_array_equal(predictor.predict(converted), want)


def forbid_densify(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array):
        for klass in cls.__mro__:
            for name in ("toarray", "todense"):
                if name in vars(klass):
                    monkeypatch.setattr(klass, name, boom)


def test_frame_model_finds_columns_by_name_or_position(regression):
    predictor, prep, lasso, rows = regression
    want = predictor.predict(rows)
    shuffled = rows[list(reversed(rows.columns))]
    np.testing.assert_array_equal(predictor.predict(shuffled), want)
    with_extra = rows.assign(label="ignored")
    np.testing.assert_array_equal(predictor.predict(with_extra), want)
    as_array = rows.to_numpy(dtype=object)  # raw mixed rows, in the training column order
    np.testing.assert_allclose(predictor.predict(as_array), want, rtol=1e-12)


# pandas deprecates unknown values in a Categorical (its deprecations only: a connection an
# earlier test left to the garbage collector is not this test's).
@pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning",
                            "error::PendingDeprecationWarning")
def test_unseen_categories_and_missing_numbers_at_predict_time(regression):
    predictor, prep, lasso, rows = regression
    odd = pd.concat([rows.head(3)] * 2, ignore_index=True)
    odd["city"] = ["tokyo", None, "rome", "lima", None, "rome"]
    odd.loc[[1, 4], "age"] = np.nan
    odd.loc[[2, 5], "income"] = np.nan
    got = predictor.predict(odd)
    assert np.isfinite(got).all()
    want = lasso.predict(prep.transform(odd))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale_of(want))
    # Two cities never seen in training weigh the same: nothing.
    assert got[0] == got[3]
    # A missing number counts as the training median (stored as float32).
    filled = odd.fillna({"age": float(np.float32(prep.fill[0])),
                         "income": float(np.float32(prep.fill[1]))})
    np.testing.assert_array_equal(predictor.predict(filled), got)


def test_array_model_imputes_missing_values_with_the_training_median(dense_array):
    predictor, prep, lasso, rows = dense_array
    holes = rows.copy()
    holes[:, 0] = np.nan
    filled = rows.copy()
    filled[:, 0] = np.float32(prep.fill[0])  # the file keeps the median as float32
    np.testing.assert_array_equal(predictor.predict(holes), predictor.predict(filled))


# -- the file -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["regression", "binary", "multiclass", "dense_array",
                                  "sparse_csr"])
def test_exported_model_predicts_bit_identically(case, request, tmp_path):
    predictor, prep, est, rows = request.getfixturevalue(case)
    blob = predictor.to_bytes()
    from_bytes = from_export(*export.loads(blob))
    n = predictor.save(tmp_path / "m.autoreg")
    assert n == len(blob) == (tmp_path / "m.autoreg").stat().st_size
    from_file = autoreg.load(tmp_path / "m.autoreg")
    for loaded in (from_bytes, from_file):
        assert type(loaded) is LinearPredictor
        assert loaded.n_features_used == predictor.n_features_used
        np.testing.assert_array_equal(loaded.decision_function(rows),
                                      predictor.decision_function(rows))
        np.testing.assert_array_equal(loaded.predict(rows), predictor.predict(rows))
        if case in ("binary", "multiclass"):
            np.testing.assert_array_equal(loaded.predict_proba(rows),
                                          predictor.predict_proba(rows))
    assert from_file.to_bytes() == blob


def test_the_file_holds_only_the_kept_features(tiny_regression):
    df, y = tiny_regression
    prep = Prep().fit(df)
    sparse_model = fit_linear(prep, Lasso(alpha=0.3), df, y, "regression")
    full_model = fit_linear(prep, Lasso(alpha=1e-4), df, y, "regression")
    assert sparse_model.n_features_used == 2
    assert full_model.n_features_used == 6
    meta, tensors = export.loads(sparse_model.to_bytes())
    assert meta["num"] == ["f0", "f1"]
    assert tensors["w_num"].shape == (2, 1)
    assert len(sparse_model.to_bytes()) < len(full_model.to_bytes())
    # Columns the model dropped do not matter at predict time, not even as garbage.
    scrambled = df.assign(f2=np.nan, f3=1e9, f4="text", f5=None)
    np.testing.assert_array_equal(sparse_model.predict(scrambled), sparse_model.predict(df))
    np.testing.assert_array_equal(sparse_model.predict(df[["f1", "f0"]]), sparse_model.predict(df))


def test_a_model_keeping_nothing_predicts_its_intercept(tiny_regression):
    df, y = tiny_regression
    prep = Prep().fit(df)
    model = fit_linear(prep, Lasso(alpha=100.0), df, y, "regression")
    assert model.n_features_used == 0
    np.testing.assert_allclose(model.predict(df), np.full(len(df), y.mean()))
    with pytest.raises(DataError, match="6 columns, got 2"):
        model.predict(df.to_numpy()[:, :2])


# -- classification -----------------------------------------------------------------------------
@pytest.mark.parametrize("case,labels", [("binary", {"no", "yes"}),
                                         ("multiclass", {"high", "low", "mid"})])
def test_classifiers_return_labels_and_probabilities(case, labels, request):
    predictor, prep, clf, rows = request.getfixturevalue(case)
    Z = prep.transform(rows)
    predicted = predictor.predict(rows)
    assert set(predicted) <= labels
    assert all(isinstance(p, str) for p in predicted)
    np.testing.assert_array_equal(predicted, clf.predict(Z))
    proba = predictor.predict_proba(rows)
    assert proba.shape == (len(rows), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, clf.predict_proba(Z), atol=1e-5)
    loaded = from_export(*export.loads(predictor.to_bytes()))
    assert list(loaded.classes_) == sorted(labels)
    np.testing.assert_array_equal(loaded.predict(rows), predicted)


def test_regression_models_have_no_probabilities(regression):
    predictor, _, _, rows = regression
    with pytest.raises(AttributeError):
        predictor.predict_proba(rows)


# -- refusals -----------------------------------------------------------------------------------
def test_wrong_column_counts_are_data_errors(dense_array, sparse_csr, regression):
    model, _, _, rows = dense_array
    with pytest.raises(DataError, match="5 columns, got 4"):
        model.predict(rows[:, :4])
    with pytest.raises(DataError, match="2-dimensional"):
        model.predict(rows[0])
    with pytest.raises(DataError, match="5 columns, got 6"):
        model.predict(pd.DataFrame(np.ones((3, 6))))
    model, _, _, rows = sparse_csr
    with pytest.raises(DataError, match="40 columns, got 41"):
        model.predict(sp.hstack([rows, rows[:, :1]], format="csr"))
    model, _, _, rows = regression
    with pytest.raises(DataError, match="6 columns, got 5"):
        model.predict(rows.to_numpy(dtype=object)[:, :5])
    renamed = rows.iloc[:, :5].set_axis([f"c{i}" for i in range(5)], axis=1)
    with pytest.raises(DataError, match="6 columns, got 5"):
        model.predict(renamed)


def test_a_categorical_only_model_checks_the_width_too(frames):
    train, test = frames
    prep = Prep().fit(train)
    coef = np.zeros(prep.n_features)
    coef[prep.feature_columns() == 1] = [0.0, 1.0, 2.0, 3.0]  # the city one-hots
    model = LinearPredictor.from_fit(prep, coef, 0.5, "regression")
    assert model.n_features_used == 1
    np.testing.assert_allclose(model.predict(test), np.asarray(
        prep.transform(test) @ coef + 0.5).ravel(), atol=1e-6)
    with pytest.raises(DataError, match="6 columns, got 1"):
        model.predict(test.to_numpy(dtype=object)[:, :1])
    with pytest.raises(DataError, match="6 columns, got 1"):
        model.predict(pd.DataFrame({"town": ["rome"]}))


def test_sklearn_oriented_coefficients_are_refused(multiclass):
    predictor, prep, clf, rows = multiclass
    with pytest.raises(ValueError, match="features x outputs"):
        LinearPredictor.from_fit(prep, clf.coef_, clf.intercept_, "multiclass", clf.classes_)


@pytest.mark.parametrize("damage", [
    lambda meta, t: meta.update(kind="forest"),
    lambda meta, t: meta.pop("task"),
    lambda meta, t: meta.update(task="ranking"),
    lambda meta, t: meta.update(n_out=2),
    lambda meta, t: meta.update(n_out="1"),
    lambda meta, t: meta["input"].update(n_columns=2),
    lambda meta, t: meta["input"].update(type="graph"),
    lambda meta, t: meta.update(classes=["a"]),
    lambda meta, t: meta.update(num=["age"]),
    lambda meta, t: meta["cat"][0].update(pos=99),
    lambda meta, t: meta["cat"][0]["cats"].pop(),
    lambda meta, t: t.update(w_num=t["w_num"][:1]),
    lambda meta, t: t.update(num_fill=t["num_fill"][:1]),
    lambda meta, t: t.update(num_pos=t["num_pos"].astype(np.float64)),
    lambda meta, t: t.update(b=np.zeros(3)),
    lambda meta, t: t.pop("b"),
])
def test_inconsistent_model_files_raise_export_format_error(binary, damage):
    predictor = binary[0]
    meta, tensors = export.loads(predictor.to_bytes())
    assert meta["cat"] and len(meta["num"]) >= 2
    damage(meta, tensors)
    with pytest.raises(ExportFormatError):
        from_export(*export.loads(export.dumps(meta, tensors)))
