"""The ``mlp`` family: training, penalties' exact zeros, fine-tuning, and the exported network."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

import autoreg
from autoreg import export
from autoreg.errors import ExportFormatError
from autoreg.families import FAMILIES, _mlp
from autoreg.model import from_export
from autoreg.model_mlp import MLPPredictor
from autoreg.prep import Prep
from autoreg.registry import load_techniques
from autoreg.space import Recipe
from autoreg.technique import CompressContext

FAM = FAMILIES["mlp"]
SMALL = {"hidden": (32, 16)}


@pytest.fixture(scope="module")
def tech():
    return {name: reg.technique for name, reg in load_techniques().items()}


def _split(X, y, n_val, seed=0):
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, va = idx[n_val:], idx[:n_val]
    prep = Prep().fit(X[tr])
    return SimpleNamespace(prep=prep, Xr=X[tr], X=prep.transform(X[tr]), y=y[tr],
                           Xvr=X[va], Xv=prep.transform(X[va]), yv=y[va])


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _split(X[:800], y[:800], 200)


@pytest.fixture(scope="module")
def noisy_regression():
    """20 columns of which 4 carry the signal; a target far from zero mean and unit scale."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 20))
    y = 1000 + 50 * (np.tanh(X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3]) \
        + 5 * rng.standard_normal(600)
    return _split(X, y, 150)


def _ctx(data, task, n_classes=0, seed=0, **options):
    ctx = FAM.context(data.X, data.y, task, n_classes, seed, None, {**SMALL, **options})
    if hasattr(data, "prep"):  # as the search sets it
        ctx = dataclasses.replace(ctx, feature_scale=data.prep.feature_scale())
    return ctx


def _train(data, recipe, task, n_classes=0, seed=0, **options):
    ctx = _ctx(data, task, n_classes, seed, **options)
    return FAM.train(recipe, ctx, data.X, data.y, data.Xv, data.yv), ctx


def _sparsity(fit) -> float:
    ws = FAM.weights(fit)
    return sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws)


def _logloss(d, y):
    z = d - d.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def _exported(fit, data, task, classes=None) -> MLPPredictor:
    model = FAM.predictor(fit, data.prep, task, classes)
    return from_export(*export.loads(model.to_bytes()))


# -- training ------------------------------------------------------------------------------

def test_same_seed_gives_bitwise_identical_weights_and_file(digits, tech):
    recipe = Recipe("mlp", penalty=tech["l1"](strength=0.1),
                    training=[tech["dropout"](rate=0.3, input_rate=0.1)])
    a, _ = _train(digits, recipe, "multiclass", 10, max_epochs=15)
    b, _ = _train(digits, recipe, "multiclass", 10, max_epochs=15)
    c, _ = _train(digits, recipe, "multiclass", 10, seed=1, max_epochs=15)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        assert np.array_equal(wa, wb)
    bytes_a = FAM.predictor(a, digits.prep, "multiclass", np.arange(10)).to_bytes()
    assert bytes_a == FAM.predictor(b, digits.prep, "multiclass", np.arange(10)).to_bytes()
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_early_stopping_restores_the_best_epoch(digits):
    fit, _ = _train(digits, Recipe("mlp"), "multiclass", 10, patience=4, max_epochs=80)
    hist = np.array(fit.history)
    # Stopped by patience, not the cap: the last 4 epochs did not beat the best before them
    # by more than 0.1%.
    assert len(hist) == fit.epochs_run < 80
    assert hist[-4:].min() > hist[:-4].min() * (1 - 1e-3)
    # The network returned is the best epoch's (the last one within 0.1% of the best loss),
    # not the last one's.
    assert fit.best_epoch == np.flatnonzero(hist <= hist.min() * 1.001)[-1] + 1
    loss = _logloss(FAM.decision(fit, digits.Xv), digits.yv)
    assert loss == pytest.approx(hist[fit.best_epoch - 1], rel=1e-4)
    assert loss <= hist.min() * 1.001 and loss < hist[-1]


def test_final_fit_trains_for_the_median_best_epoch_of_the_folds(digits):
    ctx = _ctx(digits, "multiclass", 10)
    folds = [SimpleNamespace(best_epoch=e) for e in (3, 9, 5)]
    fit = FAM.train(Recipe("mlp"), ctx, digits.X, digits.y, None, None, fold_fits=folds)
    assert fit.epochs_run == 5


def test_regression_in_target_units_beats_the_mean(noisy_regression):
    d = noisy_regression
    fit, _ = _train(d, Recipe("mlp"), "regression")
    pred = FAM.decision(fit, d.Xv)[:, 0]
    rmse = np.sqrt(np.mean((pred - d.yv) ** 2))
    assert rmse < 0.5 * np.sqrt(np.mean((d.y.mean() - d.yv) ** 2))
    # The export predicts in the same units from raw rows.
    np.testing.assert_allclose(_exported(fit, d, "regression").predict(d.Xvr), pred, rtol=1e-6)


def test_binary_beats_the_prior():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    d = _split(X, y.astype(np.int64), 170)
    fit, _ = _train(d, Recipe("mlp"), "binary")
    z = FAM.decision(fit, d.Xv)[:, 0]
    p = 1 / (1 + np.exp(-z))
    loss = -np.mean(d.yv * np.log(p) + (1 - d.yv) * np.log(1 - p))
    prior = d.y.mean()
    base = -np.mean(d.yv * np.log(prior) + (1 - d.yv) * np.log(1 - prior))
    assert loss < 0.3 * base
    model = _exported(fit, d, "binary", np.array([0, 1]))
    assert np.mean(model.predict(d.Xvr) == d.yv) > 0.93


def test_multiclass_learns_digits(digits):
    fit, _ = _train(digits, Recipe("mlp"), "multiclass", 10)
    assert np.mean(FAM.decision(fit, digits.Xv).argmax(axis=1) == digits.yv) > 0.9
    model = _exported(fit, digits, "multiclass", np.arange(10))
    assert np.mean(model.predict(digits.Xvr) == digits.yv) > 0.9
    assert model.predict_proba(digits.Xvr[:3]).sum(axis=1) == pytest.approx(1.0)


def test_sparse_rows_train_like_dense_without_densifying_the_matrix(digits, tech, monkeypatch):
    dense = SimpleNamespace(X=digits.Xr / 16.0, y=digits.y, Xv=digits.Xvr / 16.0, yv=digits.yv)
    csr = SimpleNamespace(X=sp.csr_matrix(dense.X), y=digits.y, Xv=sp.csr_matrix(dense.Xv),
                          yv=digits.yv)
    recipe = Recipe("mlp", penalty=tech["l1"](strength=0.1))
    want, _ = _train(dense, recipe, "multiclass", 10, max_epochs=10)

    full = {csr.X.shape, csr.Xv.shape}
    original = sp.csr_matrix.toarray

    def guarded(self, *args, **kwargs):
        assert self.shape not in full, f"toarray on the whole {self.shape} matrix"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", guarded)
    monkeypatch.setattr(sp.csr_matrix, "todense", guarded)
    monkeypatch.setattr(_mlp, "_EVAL_CELLS", 64 * 50)  # validation in batches of 50 rows
    got, ctx = _train(csr, recipe, "multiclass", 10, max_epochs=10)
    assert got.best_epoch == want.best_epoch
    for g, w in zip(got.weights + got.biases, want.weights + want.biases, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(FAM.decision(got, csr.Xv), FAM.decision(want, dense.Xv),
                               rtol=1e-5, atol=1e-5)
    tuned = FAM.fine_tune(got, FAM.get_weights(got), 2, recipe, ctx, csr.X, csr.y, csr.Xv,
                          csr.yv)
    assert tuned.weights[0].shape == got.weights[0].shape


# -- penalties and compression -------------------------------------------------------------

def test_l1_gives_exact_zeros_and_more_strength_more_zeros(digits, tech):
    levels = [_sparsity(_train(digits, Recipe("mlp", penalty=tech["l1"](strength=s)),
                               "multiclass", 10)[0]) for s in (0.01, 0.3, 1.0)]
    assert levels[0] < 0.1 and levels[0] + 0.3 < levels[1] < levels[2] and levels[2] > 0.8


def _rmse(fit, d) -> float:
    return float(np.sqrt(np.mean((FAM.decision(fit, d.Xv)[:, 0] - d.yv) ** 2)))


@pytest.mark.parametrize("units, strength", [(False, 0.5), (True, 0.6)])
def test_group_lasso_drops_features_and_units_from_the_file(noisy_regression, tech, units,
                                                            strength):
    d = noisy_regression
    plain, _ = _train(d, Recipe("mlp"), "regression")
    recipe = Recipe("mlp", penalty=tech["group_lasso"](strength=strength, units=units))
    fit, _ = _train(d, recipe, "regression")
    w0, w1, w2 = FAM.weights(fit)
    dead_features = ~np.any(w0 != 0, axis=1)
    dead_units = [~np.any(w1 != 0, axis=1), ~np.any(w2 != 0, axis=1)]
    assert dead_features.sum() >= (8 if not units else 3) and not dead_features[:4].any()
    assert sum(u.sum() for u in dead_units) >= (0 if not units else 6)
    assert _rmse(fit, d) < 1.05 * _rmse(plain, d)
    model = FAM.predictor(fit, d.prep, "regression", None)
    baseline = FAM.predictor(plain, d.prep, "regression", None)
    assert model.n_features_used == 20 - dead_features.sum() < baseline.n_features_used == 20
    assert model.hidden_units == [32 - dead_units[0].sum(), 16 - dead_units[1].sum()]
    assert len(model.to_bytes()) < (0.8 if not units else 0.5) * len(baseline.to_bytes())
    loaded = from_export(*export.loads(model.to_bytes()))
    np.testing.assert_allclose(loaded.predict(d.Xvr), FAM.decision(fit, d.Xv)[:, 0], rtol=1e-6)


def _compress(technique, fit, recipe, ctx, data):
    state = {"fit": fit}

    def fine_tune(weights, epochs=None):
        state["fit"] = FAM.fine_tune(state["fit"], weights, epochs, recipe, ctx, data.X, data.y,
                                     data.Xv, data.yv)
        return FAM.get_weights(state["fit"])

    cctx = CompressContext(family="mlp", task=ctx.task, seed=0, fine_tune=fine_tune)
    return FAM.set_weights(state["fit"], technique.compress(FAM.get_weights(fit), cctx))


def test_pruning_fine_tune_keeps_pruned_weights_at_zero(digits, tech):
    recipe = Recipe("mlp")
    fit, ctx = _train(digits, recipe, "multiclass", 10)
    pruned = [np.where(np.abs(w) < np.quantile(np.abs(w), 0.8), 0.0, w)
              for w in FAM.get_weights(fit)]
    before = _logloss(FAM.decision(FAM.set_weights(fit, pruned), digits.Xv), digits.yv)
    tuned = FAM.fine_tune(fit, pruned, 5, recipe, ctx, digits.X, digits.y, digits.Xv,
                          digits.yv)
    for p, t in zip(pruned, FAM.weights(tuned), strict=True):
        assert np.all(t[p == 0] == 0)
        assert not np.array_equal(t[p != 0], p[p != 0].astype(np.float32))
    assert _logloss(FAM.decision(tuned, digits.Xv), digits.yv) < before
    # Through the pruning plugin, as a search runs it.
    out = _compress(tech["pruning"](amount=0.9, scope="global"), fit, recipe, ctx, digits)
    assert _sparsity(out) >= 0.9


def test_quantized_network_exports_exactly_what_decision_computes(digits, tech):
    recipe = Recipe("mlp", penalty=tech["l1"](strength=0.3))
    fit, ctx = _train(digits, recipe, "multiclass", 10)
    q = _compress(tech["quantization"](bits=4), fit, recipe, ctx, digits)
    assert all(isinstance(w, export.Quantized) for w in q.weights)
    model = FAM.predictor(q, digits.prep, "multiclass", np.arange(10))
    loaded = from_export(*export.loads(model.to_bytes()))
    want = FAM.decision(q, digits.Xv)
    got = loaded.decision_function(digits.Xvr)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    plain = FAM.predictor(fit, digits.prep, "multiclass", np.arange(10))
    assert len(model.to_bytes()) < len(plain.to_bytes()) / 2


def _dequantized(w):
    return np.asarray(w.dequantize() if isinstance(w, export.Quantized) else w, dtype=np.float64)


def _numpy_forward(weights, biases, X):
    h = X
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ w + b
        h = np.maximum(h, 0) if i < len(weights) - 1 else h
    return h


@pytest.mark.parametrize("quantized", [False, True])
def test_dead_units_are_folded_away_without_changing_predictions(noisy_regression, quantized):
    d = noisy_regression
    fit, _ = _train(d, Recipe("mlp"), "regression", hidden=(8, 4), max_epochs=5)
    w0, w1, w2 = FAM.get_weights(fit)  # the first layer on power-of-two scaled features
    b0 = fit.biases[0].copy()
    w0[:, 2], b0[2] = 0.0, 1.5  # unit 2 outputs relu(1.5) for every row
    w0[:, 5], b0[5] = 0.0, -1.0  # unit 5 outputs 0
    w1[3, :] = 0.0  # unit 3 feeds nothing
    w2[1, :] = 0.0  # and unit 1 of the next layer neither
    w0[7, :] = 0.0  # feature 7 feeds nothing
    weights = [w0, w1, w2]
    if quantized:
        weights = [export.quantize(w, 8) for w in weights]
    biases = [b0, *fit.biases[1:]]
    # On standardized features, as the network computes.
    values = [_dequantized(w) * (fit.pscale[:, None] if i == 0 else 1)
              for i, w in enumerate(weights)]
    want = _numpy_forward(values, biases, d.Xv)[:, 0]
    b0_dropped = b0.copy()
    b0_dropped[2] = 0.0  # dropping unit 2 instead of folding it would change predictions
    assert np.abs(_numpy_forward(values, [b0_dropped, *biases[1:]], d.Xv)[:, 0] - want).min() \
        > 1e-3
    fit = FAM.set_weights(dataclasses.replace(fit, biases=biases), weights)
    # The fit's weights already hold the dead units' weights as zeros (sparsity counts them).
    v0, v1, v2 = FAM.weights(fit)
    assert not v0[:, [2, 3, 5]].any() and not v1[[2, 3, 5]].any() and not v1[:, 1].any()
    np.testing.assert_allclose(FAM.decision(fit, d.Xv)[:, 0], want, rtol=1e-6)
    model = from_export(*export.loads(FAM.predictor(fit, d.prep, "regression", None).to_bytes()))
    assert model.hidden_units == [5, 3]
    assert model.n_features_used == 19
    np.testing.assert_allclose(model.predict(d.Xvr), want, rtol=1e-6)


def test_a_network_with_every_weight_zero_exports_a_constant(noisy_regression):
    d = noisy_regression
    fit, _ = _train(d, Recipe("mlp"), "regression", max_epochs=2)
    fit = FAM.set_weights(fit, [np.zeros_like(w) for w in FAM.get_weights(fit)])
    model = from_export(*export.loads(FAM.predictor(fit, d.prep, "regression", None).to_bytes()))
    assert model.hidden_units == [0, 0] and model.n_features_used == 0
    np.testing.assert_allclose(model.predict(d.Xvr), FAM.decision(fit, d.Xv)[:, 0])


# -- the exported file ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlp_file(digits, tmp_path_factory):
    fit, _ = _train(digits, Recipe("mlp"), "multiclass", 10, max_epochs=5)
    model = FAM.predictor(fit, digits.prep, "multiclass", np.arange(10))
    path = tmp_path_factory.mktemp("mlp") / "digits.autoreg"
    model.save(path)
    return path, model


def _corrupt(meta, tensors, how):
    if how == "widths":
        meta["layers"][1] += 1
    elif how == "n_out":
        meta["layers"][-1] = 9
    elif how == "missing":
        del tensors["w2"]
    elif how == "extra":
        tensors["w3"] = np.ones((10, 10), np.float32)
    elif how == "shape":
        tensors["w1"] = tensors["w1"][:, :-1]
    elif how == "nan":
        tensors["b1"] = np.full_like(tensors["b1"], np.nan)
    elif how == "first_width":
        tensors["b"] = tensors["b"][:-1]
    elif how == "no_layers":
        del meta["layers"]


@pytest.mark.parametrize("how", ["widths", "n_out", "missing", "extra", "shape", "nan",
                                 "first_width", "no_layers"])
def test_a_corrupt_mlp_file_raises_export_format_error(mlp_file, tmp_path, how):
    path, _ = mlp_file
    meta, tensors = export.loads(path.read_bytes())
    _corrupt(meta, tensors, how)
    bad = tmp_path / "bad.autoreg"
    bad.write_bytes(export.dumps(meta, tensors))
    with pytest.raises(ExportFormatError):
        autoreg.load(bad)


def test_loading_and_predicting_an_mlp_needs_neither_torch_nor_scipy(mlp_file, digits):
    path, model = mlp_file
    rows = digits.Xvr[:5].tolist()
    code = ("import sys\n"
            "for name in ('torch', 'pandas', 'scipy', 'sklearn', 'optuna', 'mlflow'):\n"
            "    sys.modules[name] = None  # any import of these now fails\n"
            "import autoreg\n"
            f"m = autoreg.load({str(path)!r})\n"
            f"print(m.predict_proba({rows!r}).tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(eval(out.stdout), model.predict_proba(digits.Xvr[:5]),
                               rtol=1e-12)
    probe = "import sys, autoreg.families, autoreg.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_hidden_sizes_come_from_options(digits):
    ctx = FAM.context(digits.X, digits.y, "multiclass", 10, 0, None, {"hidden": (7,)})
    fit = FAM.train(Recipe("mlp"), ctx, digits.X, digits.y, digits.Xv, digits.yv)
    assert [w.shape for w in fit.weights] == [(64, 7), (7, 10)]
    with pytest.raises(ValueError, match="hidden"):
        FAM.context(digits.X, digits.y, "multiclass", 10, 0, None, {"hidden": (0,)})
