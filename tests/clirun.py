"""Running the autoreg CLI inside the test process (a helper module, not a test module)."""

from __future__ import annotations

from autoreg.cli import main


def run(capsys, *argv):
    """Run ``autoreg *argv`` in-process; return (exit code, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
