"""The conformance suite every technique plugin must pass.

Subclass :class:`TechniqueTests` in a pytest module of your plugin and name the technique::

    from autoreg.testing import TechniqueTests

    class TestMyTechnique(TechniqueTests):
        technique = "my_technique"
        plugins = ("my_plugin_module",)   # only if it is not installed as an entry point

pytest then runs, for every family and task the technique claims, small real searches that
apply it on generated data, and checks that

- its search space is sane: every parameter has a valid range, sampled values land in it, and
  the technique accepts them;
- it is deterministic: the same seed gives the same trials and byte-identical model files;
- its model files round-trip: each loads with numpy alone and reproduces the test error the
  search measured, recomputed here independently;
- its sparsity is real: the model file holds no more non-zero weights than the claimed
  fraction of zeros allows;
- its size is honest: ``size_bytes`` is the length of the model file.

Each search is small (a handful of trials, a few hundred rows) so a technique runs in seconds.
This module needs pytest; autoreg imports it only when a test suite does.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import numpy as np
import pytest

from .engine import search
from .export import loads
from .model import from_export, proba_from_decision
from .registry import load_techniques, technique_problem
from .space import SearchSpace
from .technique import Choice, Float, Int

_N_ROWS = 240


def make_data(task: str, seed: int = 0):
    """A small frame with five informative and three noise columns, one of them categorical,
    and its target for ``task``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(_N_ROWS, 7))
    color = rng.choice(["red", "green", "blue"], size=_N_ROWS)
    signal = X[:, 0] - 2 * X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + (color == "red")
    if task == "regression":
        y = signal + 0.3 * rng.normal(size=_N_ROWS)
    elif task == "binary":
        y = np.where(signal + 0.3 * rng.normal(size=_N_ROWS) > 0, "yes", "no")
    else:
        y = np.digitize(signal + 0.3 * rng.normal(size=_N_ROWS), [-1.0, 1.0])
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(7)])
    frame["color"] = color
    return frame, y


def _n_weights(family: str, n_features: int, n_out: int, hidden: tuple[int, ...]) -> int:
    if family == "linear":
        return n_features * n_out
    sizes = (n_features, *hidden, n_out)
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def _file_weights(meta: dict, tensors: dict) -> list[np.ndarray]:
    # An mlp lists its layer widths; tensors w1, w2, ... follow the first layer.
    names = ["w_num", "w_cat"] + [f"w{i}" for i in range(1, len(meta.get("layers", [0])))]
    return [tensors[n] for n in names if n in tensors]


class TechniqueTests:
    """Checks one technique plugin; set :attr:`technique` in a subclass."""

    #: The technique's name, as registered.
    technique: ClassVar[str] = ""
    #: Modules to load as plugins beside the installed entry points.
    plugins: ClassVar[tuple[str, ...]] = ()
    #: Trials per search.
    n_trials: ClassVar[int] = 4
    #: Hidden layers of the mlp searches: small, so that they are quick.
    hidden: ClassVar[tuple[int, ...]] = (16,)

    # -- fixtures -------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def registered(cls):
        if not cls.technique:
            pytest.skip("set `technique` on the TechniqueTests subclass")
        found = load_techniques(modules=cls.plugins)
        assert cls.technique in found, (
            f"technique {cls.technique!r} is not registered (installed entry points"
            + (f" and modules {cls.plugins}" if cls.plugins else "") + ")")
        return found

    @pytest.fixture(scope="class")
    @classmethod
    def tech(cls, registered):
        return registered[cls.technique].technique

    @pytest.fixture(scope="class")
    @classmethod
    def cases(cls, tech):
        return [(family, task) for family in tech.families for task in tech.tasks]

    @pytest.fixture(scope="class")
    @classmethod
    def runs(cls, tech, cases, tmp_path_factory):
        """Two searches per family and task with the same seed (the technique always on)."""
        root = tmp_path_factory.mktemp(f"conformance-{cls.technique}")
        out = {}
        for family, task in cases:
            for rep in (0, 1):
                out[family, task, rep] = cls._search(tech, family, task, root / f"{family}-"
                                                     f"{task}-{rep}")
        return out

    @classmethod
    def _search(cls, tech, family: str, task: str, where):
        import optuna

        fixed = {"penalty": tech.name} if tech.stage == "penalty" else {tech.name: True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.PartialFixedSampler(
                fixed, optuna.samplers.RandomSampler(seed=7))
        X, y = make_data(task)
        where.mkdir(parents=True)
        techniques = [tech.name] if tech.stage == "penalty" else [tech.name, "none"]
        return search(X, y, task=task, techniques=techniques, families=[family],
                      n_trials=cls.n_trials, validation="holdout", sampler=sampler, seed=3,
                      storage=str(where / "studies.journal"), artifacts=str(where / "models"),
                      hidden=cls.hidden if family == "mlp" else None, plugins=cls.plugins,
                      log_mlflow=False)

    # -- the checks -----------------------------------------------------------------------
    def test_search_space_is_sane(self, tech, registered, cases):
        import optuna

        assert technique_problem(tech) is None, technique_problem(tech)
        assert tech.description, "describe the technique for `autoreg plugins` and the docs"
        for family, task in cases:
            space = tech.search_space(family, task)
            assert space == tech.search_space(family, task), "the space must not change"
            assert space, "a technique with nothing to search should have a parameter anyway"
            SearchSpace(registered, task, [family], [tech.name])  # accepted by the host
            sampler = optuna.samplers.RandomSampler(seed=0)
            study = optuna.create_study(sampler=sampler)
            for _ in range(20):
                trial = study.ask()
                params = {}
                for name, spec in sorted(space.items()):
                    if isinstance(spec, Float):
                        v = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
                        assert spec.low <= v <= spec.high
                    elif isinstance(spec, Int):
                        v = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
                        assert spec.low <= v <= spec.high
                    else:
                        assert isinstance(spec, Choice)
                        v = trial.suggest_categorical(name, list(spec.choices))
                    params[name] = v
                instance = tech(**params)
                for name, v in params.items():
                    assert getattr(instance, name) == v
                study.tell(trial, 0.0)

    def test_every_trial_applies_it_and_succeeds(self, tech, runs):
        for (family, task, _), result in runs.items():
            assert result.failed.empty, (
                f"{family}/{task}: trials failed: {list(result.failed['reason'])}")
            assert len(result.trials) == self.n_trials
            for recipe in result.trials["recipe"]:
                assert tech.name in recipe.split("+"), recipe

    def test_deterministic(self, runs, cases):
        cols = ["trial", "recipe", "error", "sparsity", "size_bytes", "n_features_used"]
        for family, task in cases:
            a, b = runs[family, task, 0], runs[family, task, 1]
            assert a.trials[cols].equals(b.trials[cols]), f"{family}/{task}: trials differ"
            for trial in a.trials["trial"]:
                assert a.model_bytes(trial) == b.model_bytes(trial), (
                    f"{family}/{task}: trial {trial}'s model file differs between two runs "
                    "with the same seed")

    def test_export_round_trip(self, runs, cases):
        from sklearn.metrics import log_loss

        for family, task in cases:
            result = runs[family, task, 0]
            X, y = make_data(task)
            X_test, y_test = X.iloc[result.test_index], y[result.test_index]
            for trial in result.front["trial"]:
                model = from_export(*loads(result.model_bytes(trial)))
                row = result.front[result.front["trial"] == trial].iloc[0]
                d = np.asarray(model.decision_function(X_test), dtype=np.float64)
                assert np.isfinite(d).all()
                if task == "regression":
                    err = math.sqrt(float(np.mean((d - y_test.astype(float)) ** 2)))
                else:
                    proba = proba_from_decision(d, task)
                    assert np.allclose(proba.sum(axis=1), 1.0)
                    codes = np.searchsorted(model.classes_, y_test.astype(model.classes_.dtype))
                    err = log_loss(codes, proba, labels=np.arange(len(model.classes_)))
                assert err == pytest.approx(row["test_error"], rel=1e-6, abs=1e-9), (
                    f"{family}/{task}: trial {trial}: the model file's test error {err} is not "
                    f"the one the search measured ({row['test_error']})")

    def test_claimed_sparsity_is_real(self, runs, cases):
        for family, task in cases:
            result = runs[family, task, 0]
            X, y = make_data(task)
            n_features = X.shape[1] - 1 + len(np.unique(X["color"]))
            n_out = 3 if task == "multiclass" else 1
            total = _n_weights(family, n_features, n_out, self.hidden)
            for _, row in result.trials.iterrows():
                meta, tensors = loads(result.model_bytes(row["trial"]))
                nonzero = sum(int(np.count_nonzero(w)) for w in _file_weights(meta, tensors))
                claimed_zeros = round(row["sparsity"] * total)
                assert 0 <= claimed_zeros <= total
                assert nonzero <= total - claimed_zeros, (
                    f"{family}/{task}: trial {row['trial']} claims sparsity {row['sparsity']:.3f}"
                    f" ({claimed_zeros} of {total} weights zero) but its model file holds "
                    f"{nonzero} non-zero weights")

    def test_size_is_honest(self, runs, cases):
        for family, task in cases:
            result = runs[family, task, 0]
            for _, row in result.trials.iterrows():
                blob = result.model_bytes(row["trial"])
                assert row["size_bytes"] == len(blob)
                loads(blob)  # a complete, well-formed file
