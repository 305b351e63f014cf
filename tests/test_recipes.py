"""Stacked recipes (penalty, training, compression), groups, and the linear family's
compression: what a user sees in the front and in the exported files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest

import autoreg
from autoreg import export
from autoreg.cli import main
from autoreg.errors import UsageError
from autoreg.registry import load_techniques
from autoreg.space import SearchSpace


def _fixed(params: dict, seed: int = 0):
    """A sampler that fixes some parameters (the recipe) and draws the rest at random."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.PartialFixedSampler(params,
                                                   optuna.samplers.RandomSampler(seed=seed))


def _search(data, y=None, **kw):
    kw.setdefault("log_mlflow", False)
    kw.setdefault("n_trials", 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return autoreg.search(data, y, **kw)


@pytest.fixture
def grouped():
    """Two categorical columns (one carries signal) and numeric ones (two carry signal)."""
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame(rng.standard_normal((n, 5)), columns=[f"x{i}" for i in range(5)])
    df["shop"] = rng.choice(list("abcdef"), n)
    df["day"] = rng.choice(["mon", "tue", "wed", "thu"], n)
    y = 2 * df["x0"] - df["x1"] + 1.5 * (df["shop"].isin(["a", "b"])) + 0.3 * rng.normal(size=n)
    return df, y.to_numpy()


# -- the space -------------------------------------------------------------------------------
def test_recipe_names_and_order():
    reg = load_techniques()
    space = SearchSpace(reg, "regression", ["mlp"])
    assert space.optional["mlp"]["training"] == ["dropout"]
    assert space.optional["mlp"]["compression"] == ["pruning", "quantization"]
    study = optuna.create_study(sampler=_fixed({"penalty": "l2", "dropout": True,
                                                "pruning": True, "quantization": True}))
    recipe = space.sample(study.ask())
    assert recipe.name == "l2+dropout+pruning+quantization"
    assert [t.name for t in recipe.compression] == ["pruning", "quantization"]
    assert set(recipe.params) >= {"l2.strength", "dropout.rate", "pruning.amount",
                                  "quantization.bits"}


def test_linear_space_has_no_training_stage_and_default_family_is_linear():
    space = SearchSpace(load_techniques(), "binary")
    assert space.families == ("linear",)
    assert space.optional["linear"]["training"] == []
    assert "dropout" not in space.techniques and "pruning" in space.techniques


def test_only_compression_techniques_means_no_penalty():
    space = SearchSpace(load_techniques(), "regression", techniques=["pruning"])
    assert space.penalties["linear"] == ["none"]
    assert space.techniques == ["none", "pruning"]


@pytest.mark.parametrize("kwargs, match", [
    ({"techniques": ["dropout"]}, "technique 'dropout' cannot be used.*acts on mlp"),
    ({"hidden": (8,)}, "hidden sizes are for the mlp family"),
    ({"families": ["mlp"], "hidden": "8,x"}, "hidden sizes must be positive whole numbers"),
    ({"families": ["mlp"], "hidden": []}, "non-empty list"),
    ({"groups": [["x0", "nope"]]}, "group '0' names column 'nope'"),
    ({"groups": {"g": ["x0"], "h": ["x0", "x1"]}}, "column 'x0' is in two groups"),
    ({"groups": "x0,x1"}, "groups must be a list"),
    ({"groups": [[]]}, "must be a non-empty list"),
])
def test_bad_recipe_arguments(grouped, kwargs, match):
    df, y = grouped
    with pytest.raises(UsageError, match=match):
        _search(df, y, **kwargs)


# -- group lasso on linear ---------------------------------------------------------------------
def test_group_lasso_drops_whole_categorical_columns(grouped):
    df, y = grouped
    result = _search(df, y, techniques=["group_lasso"], n_trials=12,
                     sampler=_fixed({"penalty": "group_lasso"}))
    seen_partial = False
    for trial in result.trials["trial"]:
        model = result.model(trial)
        for spec in model.meta.get("cat", []):
            categories = {"shop": 6, "day": 4}[spec["col"]]
            # A categorical column is one group: all its one-hot weights stay or go together.
            seen_partial |= len(spec["cats"]) != categories
            assert len(spec["cats"]) == categories
    assert not seen_partial
    used = result.trials["n_features_used"]
    assert used.min() < used.max() <= 7


def test_user_groups_select_columns_together(grouped, tmp_path):
    df, y = grouped
    groups = {"signal": ["x0", "x1"], "noise": ["x2", "x3", "x4"]}
    result = _search(df, y, techniques=["group_lasso"], n_trials=15, groups=groups,
                     sampler=_fixed({"penalty": "group_lasso"}))
    for trial in result.trials["trial"]:
        model = result.model(trial)
        num = set(model.meta.get("num", []))
        for members in groups.values():
            assert not (num & set(members)) or set(members) <= num, (num, members)
    assert result.settings["groups"].startswith("user:")
    # Resuming with other groups is refused; with the same ones it continues.
    name = result.study_name
    with pytest.raises(autoreg.StudyError, match="groups"):
        _search(df, y, techniques=["group_lasso"], study_name=name, n_trials=20)
    again = _search(df, y, techniques=["group_lasso"], study_name=name, n_trials=16,
                    groups=groups, sampler=_fixed({"penalty": "group_lasso"}))
    assert len(again.trials) == 16


def test_cli_groups_file(grouped, tmp_path, capsys):
    df, y = grouped
    df.assign(target=y).to_csv(tmp_path / "shops.csv", index=False)
    (tmp_path / "groups.json").write_text(json.dumps([["x0", "x1"], ["x2", "x3", "x4"]]))
    try:
        main(["search", str(tmp_path / "shops.csv"), "--target", "target", "--techniques",
              "group_lasso", "--groups", str(tmp_path / "groups.json"), "--trials", "4",
              "--no-mlflow", "--json"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["front"]
    (tmp_path / "bad.json").write_text("{not json")
    for path, msg in ((tmp_path / "bad.json", "is not valid JSON"),
                      (tmp_path / "missing.json", "groups file not found")):
        with pytest.raises(SystemExit) as exc:
            main(["search", str(tmp_path / "shops.csv"), "--target", "target", "--groups",
                  str(path), "--trials", "2", "--no-mlflow"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


# -- compression on linear ---------------------------------------------------------------------
def _decision_on(result, trial, X):
    return np.asarray(result.model(trial).decision_function(X))


def test_pruning_zeros_are_in_the_exported_model(grouped):
    df, y = grouped
    result = _search(df, y, techniques=["none", "pruning"], n_trials=8,
                     sampler=_fixed({"penalty": "none", "pruning": True}))
    assert set(result.trials["recipe"]) == {"pruning"}
    for _, row in result.trials.iterrows():
        amount = row["pruning.amount"]
        # 5 numeric + 10 one-hot weights; at least the pruned fraction are zero.
        assert row["sparsity"] >= np.floor(amount * 15) / 15 - 1e-12
        meta, tensors = export.loads(result.model_bytes(row["trial"]))
        nonzero = sum(np.count_nonzero(tensors[k]) for k in ("w_num", "w_cat") if k in tensors)
        assert nonzero == round((1 - row["sparsity"]) * 15)


def test_refit_after_pruning_improves_on_plain_pruning(grouped):
    df, y = grouped
    errors = {}
    for refit in (False, True):
        result = _search(df, y, techniques=["none", "pruning"], n_trials=1,
                         sampler=_fixed({"penalty": "none", "pruning": True,
                                         "pruning.amount": 0.8, "pruning.refit": refit}))
        row = result.trials.iloc[0]
        errors[refit] = row["error"]
        assert row["sparsity"] == pytest.approx(12 / 15)
    # Refitting the kept weights recovers what pruning the fitted ones lost.
    assert errors[True] < errors[False]


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_quantized_linear_model_predicts_what_was_measured(grouped, bits):
    df, y = grouped
    result = _search(df, y, techniques=["l2", "quantization"], n_trials=3,
                     validation="holdout",
                     sampler=_fixed({"penalty": "l2", "quantization": True,
                                     "quantization.bits": bits}))
    for trial in result.trials["trial"]:
        meta, tensors = export.loads(result.model_bytes(trial))
        entry = json.loads(result.model_bytes(trial)[12:12 + int.from_bytes(
            result.model_bytes(trial)[8:12], "little")])["tensors"]["w_num"]
        assert entry[0] in ("q", "qb") and entry[3] == bits
        # Each column of codes uses at most 2**(bits-1)-1 steps of its scale.
        w = tensors["w_num"]
        exps = tensors["num_exp"]
        assert exps.shape == (w.shape[0],) and exps.dtype == np.int8
    # The file's test error is the search's: the shipped model is the quantized one.
    idx = result.test_index
    for _, row in result.front.iterrows():
        d = _decision_on(result, row["trial"], df.iloc[idx])
        rmse = float(np.sqrt(np.mean((d - y[idx]) ** 2)))
        assert rmse == pytest.approx(row["test_error"], rel=1e-9)


def test_fewer_bits_smaller_file():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 60))
    y = X @ rng.standard_normal(60) + 0.1 * rng.normal(size=300)
    sizes = {}
    for bits in (None, 8, 4, 2):
        fixed = {"penalty": "l2", "l2.strength": 1e-3, "quantization": bits is not None}
        if bits:
            fixed["quantization.bits"] = bits
        result = _search(X, y, techniques=["l2", "quantization"], n_trials=1,
                         sampler=_fixed(fixed))
        sizes[bits] = int(result.trials["size_bytes"].iloc[0])
    # 60 float32 weights are 240 bytes; 8, 4 and 2 bits need 60, 30 and 15, plus one scale and
    # 60 one-byte input exponents.
    assert sizes[None] > sizes[8] > sizes[4] > sizes[2]
    assert sizes[None] - sizes[8] >= 100 and sizes[8] - sizes[2] >= 40


def test_quantization_rounding_to_zero_counts_as_sparsity():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12))
    # One strong feature and eleven weak ones: at 2 bits the weak ones round to zero.
    y = 10 * X[:, 0] + 0.05 * X[:, 1:] @ np.ones(11) + 0.1 * rng.normal(size=200)
    result = _search(X, y, techniques=["none", "quantization"], n_trials=1,
                     sampler=_fixed({"penalty": "none", "quantization": True,
                                     "quantization.bits": 2}))
    row = result.trials.iloc[0]
    assert row["sparsity"] >= 10 / 12
    assert row["n_features_used"] <= 2


def test_all_failed_compression_names_the_technique(tiny_regression, tmp_path, monkeypatch):
    (tmp_path / "bad_shape2.py").write_text('''
from autoreg import Float, Technique, hookimpl

class Shrink(Technique):
    name = "shrink"
    stage = "compression"
    families = ("linear",)
    description = "Returns a smaller matrix than it was given."
    space = {"x": Float(0.0, 1.0)}

    def compress(self, weights, ctx):
        return [w[:1] for w in weights]

@hookimpl
def register_techniques(register):
    register(Shrink)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    X, y = tiny_regression
    with pytest.raises(autoreg.StudyError, match="technique 'shrink': compress.. changed "
                                                 "weight 0 from shape"):
        _search(X, y, techniques=["l2", "shrink"], plugins=["bad_shape2"], n_trials=3,
                sampler=_fixed({"shrink": True, "penalty": "l2"}))


# -- the mlp family through the search and the CLI ----------------------------------------------
def test_search_over_both_families_compares_them_on_one_holdout(capsys):
    code = None
    try:
        main(["search", "iris", "--family", "linear,mlp", "--hidden", "8", "--trials", "10",
              "--no-mlflow", "--seed", "1"])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header[:4] == ["pick", "trial", "family", "recipe"]
    result = _search("iris", families=["linear", "mlp"], hidden=[8], n_trials=10, seed=1)
    assert set(result.trials["family"]) == {"linear", "mlp"}
    assert result.settings["validation"] == "holdout" and result.settings["hidden"] == "8"
    for _, row in result.trials.iterrows():
        model = result.model(row["trial"])
        assert model.kind == row["family"]
        if row["family"] == "mlp":
            assert max(model.hidden_units) <= 8


def test_mlp_on_sparse_input_and_resume_with_other_hidden_refused():
    from autoreg import datasets

    X, y = datasets.sparse_csr_regression(n_samples=600, n_features=3000, density=0.01,
                                          n_informative=10)
    result = _search(X, y, families=["mlp"], hidden=(8,), n_trials=3)
    assert result.failed.empty and len(result.trials) == 3
    pred = result.model(result.trials["trial"].iloc[0]).predict(X[:5])
    assert pred.shape == (5,) and np.isfinite(pred).all()
    with pytest.raises(autoreg.StudyError, match="hidden"):
        _search(X, y, families=["mlp"], hidden=(16,), n_trials=4,
                study_name=result.study_name)
