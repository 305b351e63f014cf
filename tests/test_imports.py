"""Heavy libraries load only when a search needs them."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_import_autoreg_is_light():
    loaded = _modules_after("import autoreg")
    for heavy in ("torch", "mlflow", "optuna", "sklearn", "pandas", "scipy"):
        assert heavy not in loaded, heavy


def test_listing_plugins_does_not_load_mlflow_or_torch():
    loaded = _modules_after("from autoreg.cli import main\n"
                            "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass")
    assert "mlflow" not in loaded and "torch" not in loaded and "optuna" not in loaded


def test_loading_a_model_needs_numpy_only(tmp_path, tiny_regression):
    import autoreg

    X, y = tiny_regression
    result = autoreg.search(X, y, n_trials=3, log_mlflow=False)
    path = tmp_path / "m.autoreg"
    path.write_bytes(result.model_bytes(result.pick()))
    rows = X.to_numpy()[:4].tolist()
    code = ("import sys\n"
            "for name in ('pandas', 'scipy', 'sklearn', 'optuna', 'mlflow'):\n"
            "    sys.modules[name] = None  # any import of these now fails\n"
            "import autoreg\n"
            f"m = autoreg.load({str(path)!r})\n"
            f"print(m.predict({rows!r}).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    expected = result.model(result.pick()).predict(X.iloc[:4])
    assert eval(out.stdout) == expected.tolist()
