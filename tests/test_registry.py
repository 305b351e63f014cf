"""The plugin host: discovery through entry points, order, disabling, and what it refuses."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import pathlib
import sys
import textwrap

import pytest

import autoreg
from autoreg.cli import main
from autoreg.errors import PluginError
from autoreg.registry import DISABLE_ENV, GROUP, load_techniques
from autoreg.technique import Technique

BUILTINS = {"l1", "l2", "elasticnet"}

# A complete, valid technique module; tests swap pieces of it out.
GOOD = """
from autoreg import Choice, Float, Int, Technique, hookimpl

class {cls}(Technique):
    name = {name!r}
    stage = {stage!r}
    families = {families!r}
    tasks = ("regression",)
    space = {space}

    def linear_estimator(self, ctx):
        from sklearn.linear_model import Ridge
        return Ridge(alpha=1.0)

@hookimpl
def register_techniques(register):
    register({cls})
"""


def technique_module(name="extra", stage="penalty", families=("linear",),
                     space='{"strength": Float(1e-3, 1.0, log=True)}') -> str:
    return GOOD.format(cls="Tech", name=name, stage=stage,
                       families=families, space=space)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Write plugin modules into a folder on sys.path; forget them again afterwards."""
    folder = tmp_path / "plugins_here"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    written: list[str] = []

    def write(module: str, source: str) -> str:
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(module, None)


def fake_distribution(where: pathlib.Path, dist: str, version: str, entry_points: dict) -> None:
    """An installed-looking distribution (a bare .dist-info) that declares ``autoreg`` plugins."""
    info = where / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")
    importlib.invalidate_caches()


# --- discovery ---------------------------------------------------------------------------------

def test_builtins_come_through_the_entry_point_group():
    found = load_techniques()
    assert BUILTINS <= set(found)
    for name in BUILTINS:
        reg = found[name]
        assert reg.plugin == name
        assert reg.distribution == "autoreg"
        assert reg.version == autoreg.__version__
        assert reg.technique.stage == "penalty"
        assert reg.technique.__module__ == f"autoreg_plugins.{name}"
    # Every built-in the distribution declares is loaded, and nothing else claims to be autoreg's.
    declared = {ep.name for ep in md.distribution("autoreg").entry_points if ep.group == GROUP}
    assert {n for n, r in found.items() if r.distribution == "autoreg"} == declared


def test_builtin_l1_keeps_the_intercept_on_binary_tasks():
    # At full strength every weight is zero; the model must still predict the base rate,
    # not 50/50 (liblinear's penalized intercept would zero it too).
    import numpy as np

    from autoreg.families import FAMILIES

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X[:, 0] + rng.standard_normal(300) > 1.0).astype(int)  # about 24% positives
    X = (X - X.mean(0)) / X.std(0)
    family = FAMILIES["linear"]
    ctx = family.context(X, y, "binary", 2, seed=0)
    l1 = load_techniques()["l1"].technique
    fitted = family.fit(l1(strength=1.0).linear_estimator(ctx), X, y, 1)
    assert not fitted.coef.any()
    assert 1 / (1 + np.exp(-fitted.intercept[0])) == pytest.approx(y.mean(), abs=0.03)


def test_the_host_imports_no_plugin_by_name():
    host = pathlib.Path(autoreg.__file__).parent
    offenders = [p.name for p in host.rglob("*.py") if "autoreg_plugins" in p.read_text()]
    assert offenders == []


def test_order_is_sorted_and_the_same_every_time(plugin_dir):
    # Registered in reverse alphabetical order; pluggy would call them last-first.
    plugin_dir("zz_first", technique_module("aaa"))
    plugin_dir("aa_second", technique_module("zzz"))
    one = load_techniques(modules=["zz_first", "aa_second"])
    two = load_techniques(modules=["aa_second", "zz_first"])
    assert list(one) == sorted(one)
    assert list(one) == list(two)
    assert one["aaa"].plugin == "zz_first"
    assert one["aaa"].distribution == "(module)"


def test_an_installed_third_party_distribution_is_found(tmp_path, monkeypatch, plugin_dir):
    plugin_dir("thirdparty_mod", technique_module("third"))
    fake_distribution(tmp_path / "plugins_here", "autoreg-third", "2.3.4",
                      {"third": "thirdparty_mod"})
    found = load_techniques()
    assert (found["third"].distribution, found["third"].version) == ("autoreg-third", "2.3.4")
    assert found["third"].plugin == "third"
    assert "third" not in load_techniques(disable=["third"])


# --- disabling ---------------------------------------------------------------------------------

def test_disable_by_argument():
    found = load_techniques(disable=["l2"])
    assert "l2" not in found
    assert {"l1", "elasticnet"} <= set(found)


def test_disable_by_environment(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, " l2 , elasticnet,")
    found = load_techniques()
    assert "l2" not in found and "elasticnet" not in found
    assert "l1" in found


def test_disabled_plugin_is_not_even_imported(plugin_dir):
    # A disabled plugin cannot break the host, which is the point of disabling one.
    plugin_dir("broken_but_off", "raise RuntimeError('never imported')\n")
    found = load_techniques(modules=["broken_but_off"], disable=["broken_but_off"])
    assert BUILTINS <= set(found)
    assert "broken_but_off" not in sys.modules


# --- inline modules ----------------------------------------------------------------------------

def test_module_plugin_is_loaded_and_searchable(plugin_dir):
    plugin_dir("my_ridge", technique_module("my_ridge"))
    found = load_techniques(modules=["my_ridge"])
    tech = found["my_ridge"].technique
    assert issubclass(tech, Technique)
    assert found["my_ridge"].plugin == "my_ridge"
    assert tech.search_space("linear", "regression")["strength"].high == 1.0


def test_module_already_loaded_through_its_entry_point_is_not_loaded_twice():
    found = load_techniques(modules=["autoreg_plugins.l1"])
    assert found["l1"].plugin == "l1"


# --- refusals ----------------------------------------------------------------------------------

def test_plugin_that_fails_to_import_is_named(plugin_dir):
    plugin_dir("boom_plugin", "raise RuntimeError('kaboom')\n")
    with pytest.raises(PluginError, match=r"'boom_plugin' failed to import: RuntimeError: kaboom"):
        load_techniques(modules=["boom_plugin"])


def test_missing_module_is_named():
    with pytest.raises(PluginError, match=r"'no_such_plugin_mod' failed to import: "
                                          r"ModuleNotFoundError"):
        load_techniques(modules=["no_such_plugin_mod"])


def test_entry_point_that_fails_to_import_names_plugin_and_distribution(tmp_path, plugin_dir):
    plugin_dir("ep_boom", "import a_module_that_is_not_there\n")
    fake_distribution(tmp_path / "plugins_here", "autoreg-boom", "0.0.1", {"boom": "ep_boom"})
    with pytest.raises(PluginError, match=r"plugin 'boom' \(from autoreg-boom\) failed to import"):
        load_techniques()


def test_two_distributions_with_one_plugin_name_are_refused(tmp_path, plugin_dir):
    plugin_dir("shadow_l1", technique_module("shadow"))
    fake_distribution(tmp_path / "plugins_here", "autoreg-shadow", "1.0", {"l1": "shadow_l1"})
    with pytest.raises(PluginError, match=r"plugin name 'l1' is provided by both autoreg and "
                                          r"autoreg-shadow; .* --disable-plugin l1"):
        load_techniques()


def test_duplicate_technique_name_names_both_plugins(plugin_dir):
    plugin_dir("dup_one", technique_module("dup"))
    plugin_dir("dup_two", technique_module("dup"))
    with pytest.raises(PluginError) as info:
        load_techniques(modules=["dup_two", "dup_one"])
    message = str(info.value)
    assert "'dup'" in message and "'dup_one'" in message and "'dup_two'" in message


def test_duplicate_of_a_builtin_is_refused(plugin_dir):
    plugin_dir("my_l1", technique_module("l1"))
    with pytest.raises(PluginError, match=r"'l1' is already registered by plugin"):
        load_techniques(modules=["my_l1"])


def test_penalty_without_linear_estimator(plugin_dir):
    plugin_dir("lazy_penalty", """
        from autoreg import Float, Technique, hookimpl

        class Lazy(Technique):
            name = "lazy"
            stage = "penalty"
            families = ("linear",)
            space = {"strength": Float(0.1, 1.0)}

        @hookimpl
        def register_techniques(register):
            register(Lazy)
    """)
    with pytest.raises(PluginError, match=r"plugin 'lazy_penalty': technique 'lazy' is a penalty "
                                          r"on linear but does not implement linear_estimator"):
        load_techniques(modules=["lazy_penalty"])


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"stage": "regularize"}, r"has stage 'regularize'; use one of penalty, training"),
    ({"families": ("tree",)}, r"unknown family 'tree' \(known: linear, mlp\)"),
    ({"families": "linear"}, r"families must be a non-empty tuple"),
    ({"families": ()}, r"families must be a non-empty tuple"),
    ({"name": "Bad-Name"}, r"needs a name of lower-case letters"),
    ({"name": "none"}, r"needs a name of lower-case letters"),
    ({"space": '{"strength": Float(1.0, 0.1)}'}, r"parameter 'strength' needs finite low < high"),
    ({"space": '{"strength": Float(0.0, 1.0, log=True)}'}, r"log-scaled range needs low > 0"),
    ({"space": '{"strength": Float("a", 1.0)}'}, r"needs numbers for low and high"),
    ({"space": '{"k": Int(1, 2.5)}'}, r"parameter 'k' needs integers"),
    ({"space": '{"kind": Choice(())}'}, r"needs a non-empty tuple of choices"),
    ({"space": '{"kind": Choice("ab")}'}, r"needs a non-empty tuple of choices"),
    ({"space": '{"kind": Choice((None, [1]))}'}, r"choice None is not a str"),
    ({"space": '{"strength": (0.1, 1.0)}'}, r"'strength' is not a Float, Int or Choice"),
    ({"space": '{"Strength": Float(0.1, 1.0)}'}, r"'Strength' is not a lower-case identifier"),
    ({"space": '{"name": Float(0.1, 1.0)}'}, r"parameter name 'name' is reserved"),
    ({"space": '{"params": Float(0.1, 1.0)}'}, r"parameter name 'params' is reserved"),
])
def test_bad_technique_is_refused_with_its_plugin_named(plugin_dir, kwargs, expected):
    plugin_dir("bad_tech", technique_module(**{"name": "bad", **kwargs}))
    with pytest.raises(PluginError, match=r"^plugin 'bad_tech': technique .*" + expected):
        load_techniques(modules=["bad_tech"])


def test_register_takes_a_class(plugin_dir):
    plugin_dir("gives_instance", """
        from autoreg import hookimpl

        @hookimpl
        def register_techniques(register):
            register("l9")
    """)
    with pytest.raises(PluginError, match=r"'gives_instance': register\(\) takes a Technique"):
        load_techniques(modules=["gives_instance"])


def test_error_inside_the_hook_names_the_plugin(plugin_dir):
    plugin_dir("hook_raises", """
        from autoreg import hookimpl

        @hookimpl
        def register_techniques(register):
            raise KeyError("oops")
    """)
    with pytest.raises(PluginError, match=r"'hook_raises' failed while registering: KeyError"):
        load_techniques(modules=["hook_raises"])


def test_misspelled_hook_is_an_error_not_silence(plugin_dir):
    plugin_dir("typo_hook", """
        from autoreg import hookimpl

        @hookimpl
        def register_technique(register):
            pass
    """)
    with pytest.raises(PluginError, match=r"plugin 'typo_hook' implements unknown hook "
                                          r"'register_technique' \(known: register_techniques\)"):
        load_techniques(modules=["typo_hook"])


def test_hook_with_wrong_argument_is_refused(plugin_dir):
    plugin_dir("wrong_arg", """
        from autoreg import hookimpl

        @hookimpl
        def register_techniques(add):
            pass
    """)
    with pytest.raises(PluginError, match=r"plugin 'wrong_arg' has an invalid hook"):
        load_techniques(modules=["wrong_arg"])


# --- CLI ---------------------------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plugins_json(capsys):
    code, out, err = run_cli(capsys, "plugins", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    l1 = next(r for r in rows if r["name"] == "l1")
    assert l1["stage"] == "penalty"
    assert l1["families"] == ["linear", "mlp"]
    assert l1["distribution"] == "autoreg" and l1["version"] == autoreg.__version__
    assert l1["search_space"]["linear"] == {
        "strength": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "relax": {"type": "float", "low": 0.0, "high": 1.0, "log": False}}
    assert set(l1["search_space"]["mlp"]) == {"strength"}
    pruning = next(r for r in rows if r["name"] == "pruning")
    assert pruning["stage"] == "compression"
    assert set(pruning["search_space"]["mlp"]) == {"amount", "scope"}
    assert set(r["name"] for r in rows) >= BUILTINS


def test_cli_plain_listing_shows_space_and_origin(capsys):
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    assert f"from autoreg {autoreg.__version__}" in out
    assert "linear: l1_ratio: float [0.05, 0.95]" in out


def test_cli_disable_plugin(capsys):
    code, out, _ = run_cli(capsys, "--disable-plugin", "l2", "plugins", "--json")
    assert code == 0
    names = {r["name"] for r in json.loads(out)}
    assert "l2" not in names and "l1" in names


def test_cli_disable_by_environment(capsys, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "l1,l2")
    code, out, _ = run_cli(capsys, "plugins", "--json")
    names = {r["name"] for r in json.loads(out)}
    assert code == 0 and not names & {"l1", "l2"} and "elasticnet" in names


def test_cli_plugin_module(capsys, plugin_dir):
    plugin_dir("cli_extra", technique_module("cli_extra"))
    code, out, _ = run_cli(capsys, "--plugin", "cli_extra", "plugins", "--json")
    row = next(r for r in json.loads(out) if r["name"] == "cli_extra")
    assert code == 0 and row["plugin"] == "cli_extra" and row["distribution"] == "(module)"


def test_cli_plugin_trace_goes_to_stderr(capsys, monkeypatch):
    monkeypatch.setenv("AUTOREG_TRACE_PLUGINS", "1")
    code, out, err = run_cli(capsys, "plugins", "--json")
    assert code == 0
    assert "l1" in {r["name"] for r in json.loads(out)}  # stdout is still pure JSON
    assert "register_techniques plugin='l1'" in err
    assert f"registered 'l1' (penalty) from autoreg {autoreg.__version__}" in err


@pytest.mark.parametrize("module", ["badmodule_that_does_not_exist", "typo_cli_hook"])
def test_cli_bad_plugin_is_one_line_and_no_traceback(capsys, plugin_dir, module):
    plugin_dir("typo_cli_hook", "from autoreg import hookimpl\n\n@hookimpl\n"
                                "def register_technique(register):\n    pass\n")
    code, out, err = run_cli(capsys, "--plugin", module, "plugins")
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"autoreg: error: plugin module '{module}'") or \
        err.startswith(f"autoreg: error: plugin '{module}'")
    assert "Traceback" not in err and "internal error" not in err


def test_every_hook_is_documented():
    from autoreg import hookspecs

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "autoreg_spec")]
    assert "register_techniques" in hooks
    for hook in hooks:
        assert f"def {hook}(" in doc, f"hook {hook} is not in docs/plugins.md"


@pytest.mark.parametrize("path, space, needle", [
    ("{}", '{"strength": Float(1e-3, 1.0, log=True), "mix": Float(0.0, 1.0)}',
     r"linear_path must give a value for each of \['mix'\]"),
    ('{"mix": 2.0}', '{"strength": Float(1e-3, 1.0, log=True), "mix": Float(0.0, 1.0)}',
     r"linear_path value mix=2.0 is outside float \[0, 1\]"),
    ("{}", '{"strength": Float(0.0, 1.0)}', "linear_path is for penalties with a log-scaled"),
])
def test_bad_linear_path_is_refused(plugin_dir, path, space, needle):
    source = technique_module("pathy", space=space).replace(
        "    space =", f"    linear_path = {path}\n    space =")
    plugin_dir("pathy_plugin", source)
    with pytest.raises(PluginError, match=needle):
        load_techniques(modules=["pathy_plugin"])


def test_a_third_party_penalty_with_a_path_is_walked(plugin_dir):
    source = technique_module("pathy", space='{"strength": Float(1e-3, 1.0, log=True)}').replace(
        "    space =", "    linear_path = {}\n    space =")
    plugin_dir("pathy_ok_plugin", source)
    from autoreg.space import SearchSpace

    space = SearchSpace(load_techniques(modules=["pathy_ok_plugin"]), "regression", ("linear",),
                        ["pathy", "l2"])
    walked = [p["penalty"] for p, _ in space.path_points(3)]
    assert walked == ["l2"] * 3 + ["pathy"] * 3  # "none" was not asked for
