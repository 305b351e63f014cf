"""The example third-party plugin (examples/autoreg-l0), installed the way a user would install it.

It goes into a throwaway virtualenv that sees this interpreter's packages (autoreg included) but
not the other way round, so no other test ever sees ``l0``.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "autoreg-l0"


def run(python: pathlib.Path, *args: str, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def autoreg(python: pathlib.Path, *argv: str, env=None):
    out = run(python, "-c", f"from autoreg.cli import main; main({list(argv)!r})", env=env).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def l0_python(tmp_path_factory) -> pathlib.Path:
    """The python of a fresh virtualenv with autoreg-l0 installed (and only there)."""
    root = tmp_path_factory.mktemp("l0venv")
    venv = root / "venv"
    # No pip of its own: this interpreter's pip, setuptools and autoreg are reached through
    # a .pth file. site.addsitedir (not a bare path line) so that the .pth files there run too,
    # among them the one that makes the editable autoreg importable.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    parent = sysconfig.get_paths()["purelib"]
    pathlib.Path(site.stdout.strip(), "_parent_env.pth").write_text(
        f"import site; site.addsitedir({parent!r})\n")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the repository.
    source = shutil.copytree(EXAMPLE, root / "autoreg-l0",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--disable-pip-version-check", str(source))
    return python


def test_example_module_is_under_60_lines():
    modules = list(EXAMPLE.glob("*.py"))
    assert [m.name for m in modules] == ["autoreg_l0.py"]
    assert len(modules[0].read_text().splitlines()) < 60


def test_installed_example_is_listed(l0_python):
    rows = {r["name"]: r for r in autoreg(l0_python, "plugins", "--json")}
    l0 = rows["l0"]
    assert l0["distribution"] == "autoreg-l0" and l0["version"] == "0.1.0"
    assert l0["plugin"] == "l0"
    assert (l0["stage"], l0["families"], l0["tasks"]) == ("penalty", ["linear"], ["regression"])
    assert l0["search_space"] == {"linear": {"keep": {"type": "float", "low": 0.01, "high": 1.0,
                                                      "log": True}}}
    assert {"l1", "l2", "elasticnet"} <= set(rows)


def test_installed_example_can_be_disabled(l0_python):
    env = {**os.environ, "AUTOREG_DISABLE_PLUGINS": "l0"}
    names = {r["name"] for r in autoreg(l0_python, "plugins", "--json", env=env)}
    assert "l0" not in names and "l1" in names


def test_installed_example_is_searched(l0_python):
    result = autoreg(l0_python, "search", "diabetes", "--techniques", "l0", "--trials", "8",
                     "--no-mlflow", "--json")
    assert result["n_trials"] == 8 and result["n_failed"] == 0
    front = result["front"]
    assert front and {row["recipe"] for row in front} == {"l0"}
    assert all(0.01 <= row["l0.keep"] <= 1.0 for row in front)
    # OMP keeps at most round(keep * 10) of diabetes' 10 features: the rest are exact zeros.
    assert max(row["sparsity"] for row in front) > 0
    for row in front:
        kept = min(10, max(1, round(row["l0.keep"] * 10)))
        assert row["n_features_used"] <= kept
        assert row["sparsity"] == pytest.approx(1 - row["n_features_used"] / 10)


def test_example_is_not_visible_outside_its_virtualenv():
    from autoreg.registry import load_techniques

    assert "l0" not in load_techniques()


@pytest.fixture
def l0_module(monkeypatch):
    """The example loaded straight from its folder, as ``--plugin autoreg_l0`` would."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield "autoreg_l0"
    sys.modules.pop("autoreg_l0", None)


def test_example_handles_one_hot_columns(l0_module):
    # Categorical columns make the preprocessed matrix sparse; OMP itself only takes dense input.
    import numpy as np
    import pandas as pd

    import autoreg

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.standard_normal(120), "b": rng.standard_normal(120),
                       "city": rng.choice(["oslo", "rome", "lima"], 120)})
    df["y"] = 2 * df["a"] + 3 * (df["city"] == "rome") + 0.1 * rng.standard_normal(120)
    result = autoreg.search(df, target="y", techniques=["l0"], plugins=[l0_module], n_trials=6,
                            log_mlflow=False)
    assert len(result.trials) == 6 and len(result.failed) == 0
    assert result.front["sparsity"].max() > 0


def test_docs_show_the_example_as_it_is():
    doc = (EXAMPLE.parents[1] / "docs" / "plugins.md").read_text()
    body = (EXAMPLE / "autoreg_l0.py").read_text().split('"""\n\n', 1)[1]
    assert body in doc
