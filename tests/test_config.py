"""``autoreg search --config job.toml``: every search option from a TOML file, flags win."""

from __future__ import annotations

import json

import pytest
from clirun import run

from autoreg.cli import config_defaults, search
from autoreg.errors import UsageError

JOB = """\
data = "diabetes"
trials = 6
techniques = ["l1", "l2"]
seed = 3
no-mlflow = true
study = "from-toml"
"""


def _search_json(capsys, *argv):
    code, out, err = run(capsys, "search", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_job_runs_from_its_config(capsys, tmp_path):
    (tmp_path / "job.toml").write_text(JOB)
    got = _search_json(capsys, "--config", "job.toml")
    assert got["study"] == "from-toml" and got["n_trials"] == 6
    assert got["mlflow_run_id"] is None  # no-mlflow = true
    recipes = {row["recipe"].split("+")[0] for row in got["front"]}
    assert recipes <= {"l1", "l2"}, recipes


def test_flags_override_the_config(capsys, tmp_path):
    (tmp_path / "job.toml").write_text(JOB)
    got = _search_json(capsys, "--config", "job.toml", "--trials", "4", "--study", "flagged")
    assert got["study"] == "flagged" and got["n_trials"] == 4


def test_a_search_table_and_underscored_keys(capsys, tmp_path):
    (tmp_path / "job.toml").write_text('[search]\ndata = "diabetes"\ntrials = 3\n'
                                       'no_mlflow = true\ntest_size = 0.25\n')
    got = _search_json(capsys, "--config", "job.toml")
    assert got["n_trials"] == 3


def test_every_search_option_can_come_from_the_config():
    options = [p for p in search.params if p.name != "config"]
    table = {}
    for p in options:
        key = next((o[2:] for o in p.opts if o.startswith("--")), p.name)
        table[key] = True if getattr(p, "is_flag", False) else "x"
    defaults = config_defaults(search, table, "job.toml")
    assert set(defaults) == {p.name for p in options}  # every one, each to its parameter


@pytest.mark.parametrize("text, needle", [
    ("trails = 5\n", "unknown key 'trails' in job.toml; did you mean 'trials'?"),
    ("plugin = 'x'\n", "unknown key 'plugin' in job.toml"),
    ("trials = \n", "config job.toml is not valid TOML"),
    ("[search.trials]\nx = 3\n", "key 'trials' in job.toml holds a table"),
    ("trials = 'many'\n", "'many' is not a valid integer"),
])
def test_a_bad_config_is_one_line_and_exit_2(capsys, tmp_path, text, needle):
    (tmp_path / "job.toml").write_text(text)
    code, out, err = run(capsys, "search", "--config", "job.toml")
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / ".autoreg" / "studies.journal").exists()  # nothing was started


def test_a_missing_config_file(capsys):
    code, _, err = run(capsys, "search", "--config", "nope.toml")
    assert code == 2 and "config file not found: nope.toml" in err


def test_config_defaults_refuses_unknown_keys_directly():
    with pytest.raises(UsageError, match="unknown key 'speed'"):
        config_defaults(search, {"speed": 1}, "job.toml")


def test_the_readme_example_config_uses_real_options():
    import re
    from pathlib import Path

    import tomllib

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    assert blocks, "README.md shows no example config"
    for block in blocks:
        defaults = config_defaults(search, tomllib.loads(block), "README.md")
        assert defaults and "data" in defaults
