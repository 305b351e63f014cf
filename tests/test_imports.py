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
