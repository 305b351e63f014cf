"""The hypervolume, the interactive Pareto page and the static PNG."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import autoreg
from autoreg import plots
from autoreg.errors import UsageError


# -- real results (one search per objective set, shared by the module) -----------------------
def _search(tmp_path_factory, objectives, n_trials, **options):
    home = tmp_path_factory.mktemp("plots")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv("AUTOREG_HOME", str(home / ".autoreg"))
        return autoreg.search("diabetes", n_trials=n_trials, log_mlflow=False, seed=0,
                              objectives=objectives, **options)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _search(tmp_path_factory, ("error", "sparsity", "size"), 25)


@pytest.fixture(scope="module")
def result_2d(tmp_path_factory):
    """Two objectives and a size limit that some trials break."""
    result = _search(tmp_path_factory, ("error", "size"), 15, max_size=380)
    assert 0 < (~result.trials["feasible"]).sum() < len(result.trials)
    return result


def _figure(page: str):
    """The data and layout that the page hands to ``Plotly.newPlot``."""
    m = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*', page)
    assert m, "no plotly figure in the page"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, m.end())
    rest = re.match(r"\s*,\s*", page[end:])
    layout, _ = decoder.raw_decode(page, end + rest.end())
    return data, layout


def _traces(data, panel, *roles):
    return [t for t in data if t.get("meta", {}).get("panel") == panel
            and t["meta"]["role"] in roles]


# -- hypervolume ------------------------------------------------------------------------------
def _frame(rows):
    return pd.DataFrame(rows, columns=["error", "sparsity", "size_bytes"])


def test_hypervolume_equals_hand_computed_boxes():
    trials = _frame([(10.0, 0.0, 100), (2.0, 0.2, 80), (6.0, 0.6, 40)])
    # One objective: the best error halves the worst, so half the segment [0, 10].
    hv, ref = plots.hypervolume(_frame([(5.0, 0, 0)]), trials, ("error",))
    assert hv == pytest.approx(0.5) and ref == {"error": 10.0}
    # Two objectives, normalized points (0.2, 0.8) and (0.6, 0.4): boxes of 0.16 and 0.24
    # overlapping by 0.08.
    front = _frame([(2.0, 0.2, 80), (6.0, 0.6, 40)])
    hv, ref = plots.hypervolume(front, trials, ("error", "size"))
    assert hv == pytest.approx(0.32) and ref == {"error": 10.0, "size_bytes": 100.0}
    # Three objectives: (0.5, 0.5, 0.5) alone is 1/8; with (0.25, 0.75, 0.75) it gains
    # 0.75 * 0.25 * 0.25 minus the shared 0.5 * 0.25 * 0.25.
    a, b = (5.0, 0.5, 50), (2.5, 0.25, 75)
    hv, ref = plots.hypervolume(_frame([a]), trials, ("error", "sparsity", "size"))
    assert hv == pytest.approx(0.125)
    assert ref == {"error": 10.0, "sparsity": 0.0, "size_bytes": 100.0}
    hv, _ = plots.hypervolume(_frame([a, b]), trials, ("error", "sparsity", "size"))
    assert hv == pytest.approx(0.125 + 0.046875 - 0.03125)


@pytest.mark.parametrize("dims", [2, 3])
def test_hypervolume_matches_monte_carlo_on_random_fronts(dims):
    rng = np.random.default_rng(dims)
    samples = rng.random((200_000, dims))
    for n in (1, 4, 25):
        points = rng.random((n, dims)) ** 0.5
        exact = plots._unit_hypervolume(points)
        dominated = np.zeros(len(samples), bool)
        for p in points:
            dominated |= np.all(samples >= p, axis=1)
        estimate = dominated.mean()
        se = np.sqrt(max(estimate * (1 - estimate), 1e-4) / len(samples))
        assert abs(exact - estimate) < 5 * se, (n, exact, estimate)
        # Dominated points add nothing.
        worse = np.minimum(points + rng.random(points.shape) * 0.2, 1.0)
        assert plots._unit_hypervolume(np.vstack([points, worse])) == pytest.approx(exact)


def test_hypervolume_degenerate_cases_give_a_number_in_range():
    objs = ("error", "sparsity", "size")
    one = _frame([(3.0, 0.5, 200)])
    assert plots.hypervolume(one, one, objs)[0] == 0.0  # a lone trial is its own reference
    assert plots.hypervolume(one.iloc[:0], one, objs)[0] == 0.0  # empty front
    # A NaN error is ignored, both in the front and for the reference.
    trials = _frame([(np.nan, 0.5, 100), (4.0, 0.0, 100), (2.0, 0.5, 50)])
    hv, ref = plots.hypervolume(trials, trials, objs)
    assert ref["error"] == 4.0 and hv == pytest.approx(0.5 * 0.5 * 0.5)
    # Every trial has zero error (say 1 - accuracy on easy data): that axis counts as achieved.
    perfect = _frame([(0.0, 0.5, 50), (0.0, 0.0, 100)])
    hv, ref = plots.hypervolume(perfect, perfect, objs)
    assert ref["error"] == 0.0 and hv == pytest.approx(0.25)
    nan_only = _frame([(np.nan, 0.5, 50)])
    assert plots.hypervolume(nan_only, nan_only, objs)[0] == 0.0


def test_hypervolume_of_a_search_rises_when_a_dominating_model_is_added(result):
    hv, ref = plots.hypervolume(result.front, result.trials, result.objectives)
    assert 0 < hv < 1
    assert set(ref) == {"error", "sparsity", "size_bytes"}
    assert ref["error"] == result.trials["error"].max()
    assert ref["size_bytes"] == result.trials["size_bytes"].max()
    best = result.front.loc[result.front["error"].idxmin()].copy()
    best["error"] *= 0.9
    best["size_bytes"] = result.front["size_bytes"].min() - 1
    best["sparsity"] = min(1.0, result.front["sparsity"].max() + 0.05)
    front = pd.concat([result.front, best.to_frame().T], ignore_index=True)
    trials = pd.concat([result.trials, best.to_frame().T], ignore_index=True)
    better, ref2 = plots.hypervolume(front, trials, result.objectives)
    assert ref2 == ref and hv < better <= 1


# -- interactive page -------------------------------------------------------------------------
def test_html_shows_every_trial_once_per_view_with_the_front_and_pick_on_top(result):
    page = plots.pareto_html(result)
    data, layout = _figure(page)
    numbers = set(result.trials["trial"].astype(int))
    pick = int(result.pick()["trial"])
    assert "src=\"http" not in page and len(page) > 3_000_000  # plotly.js is embedded
    for panel in ("3d", "size", "sparsity"):
        points = _traces(data, panel, "trials", "infeasible", "front")
        seen = [n for t in points for n in t["customdata"]]
        assert sorted(seen) == sorted(numbers), panel
        (front,) = _traces(data, panel, "front")
        assert sorted(front["customdata"]) == sorted(result.front["trial"].astype(int))
        assert front["marker"]["symbol"] == "diamond"
        (star,) = _traces(data, panel, "pick")
        assert star["customdata"] == [pick] and f"trial {pick}" in star["text"][0]
        # Drawn on top: the front comes after the other trials.
        order = [t["meta"]["role"] for t in data if t["meta"]["panel"] == panel]
        assert order.index("front") > max(i for i, r in enumerate(order) if r == "trials")
    assert sum(t["type"] == "scatter3d" for t in data) >= 2
    title = layout["title"]["text"]
    assert result.study_name in title and "diabetes" in title
    assert f"{len(result.trials)} trials" in title and "hypervolume 0." in title


def test_html_hover_names_recipe_parameters_and_metric(result):
    data, _ = _figure(plots.pareto_html(result))
    hover = {n: text for t in _traces(data, "3d", "trials", "infeasible", "front")
             for n, text in zip(t["customdata"], t["text"], strict=True)}
    for _, row in result.trials.iterrows():
        text = hover[int(row["trial"])]
        assert f"trial {int(row['trial'])}</b>: {row['recipe']}" in text
        assert "error (rmse)" in text and "size: " in text and "features used" in text
        for col in ("l1.strength", "l2.strength", "elasticnet.strength", "pruning.amount"):
            assert (f"{col} = " in text) == (not pd.isna(row[col]))
    tested = result.front[result.front["test_error"].notna()]
    assert all("test error (rmse)" in hover[int(n)] for n in tested["trial"])


def test_html_marks_the_requested_pick(result):
    other = int(result.front["trial"].iloc[-1])
    data, _ = _figure(plots.pareto_html(result, pick_trial=other))
    assert [t["customdata"] for t in _traces(data, "size", "pick")] == [[other]]
    with pytest.raises(UsageError, match="not a completed trial"):
        plots.pareto_html(result, pick_trial=10_000)


def test_two_objective_search_gives_one_2d_plot(result_2d):
    data, layout = _figure(plots.pareto_html(result_2d))
    assert not any(t["type"] == "scatter3d" for t in data)
    assert {t["meta"]["panel"] for t in data} == {"size"}
    assert "scene" not in layout and "xaxis2" not in layout
    assert layout["xaxis"]["title"]["text"].startswith("model size")
    assert layout["yaxis"]["title"]["text"] == "validation error (rmse)"
    (front,) = _traces(data, "size", "front")
    assert len(front["customdata"]) == len(result_2d.front)
    # With two objectives the staircase runs through every front point.
    (line,) = _traces(data, "size", "line")
    assert len(line["x"]) == len(result_2d.front)
    # Trials over the size limit are grey, never on the front, and say why on hover.
    (grey,) = _traces(data, "size", "infeasible")
    infeasible = result_2d.trials.loc[~result_2d.trials["feasible"], "trial"].astype(int)
    assert sorted(grey["customdata"]) == sorted(infeasible)
    assert grey["marker"]["color"] == plots._GREY
    assert all("infeasible" in text for text in grey["text"])


# -- static figure ----------------------------------------------------------------------------
def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_png_is_a_readable_figure_of_sensible_size(result, result_2d, tmp_path):
    three, two = tmp_path / "three.png", tmp_path / "two.png"
    plots.pareto_png(result, three)
    plots.pareto_png(result_2d, two, pick_trial=int(result_2d.front["trial"].iloc[0]))
    w3, h3 = _png_size(three)
    w2, h2 = _png_size(two)
    assert 10_000 < three.stat().st_size < 200_000
    assert 800 < w3 < 2000 and 400 < h3 < 900
    assert w2 < w3 * 0.75  # one panel instead of two


def test_importing_plots_loads_neither_plotly_nor_matplotlib():
    code = "import autoreg.plots, sys; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "plotly" not in loaded and "matplotlib" not in loaded


# -- both files, drawn aside while MLflow is written ------------------------------------------
def _without_ids(page: str) -> str:
    """The page without the random id plotly gives its figure's element."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "id", page)


def test_files_drawn_in_a_child_process_are_those_drawn_here(result, tmp_path):
    from pathlib import Path

    from autoreg.tracking import _Drawing

    with _Drawing(result) as drawing:
        assert drawing._proc is not None  # two cores or more: drawn aside
        html, png = map(Path, drawing.files())
        aside = html.read_text(encoding="utf-8"), png.read_bytes()
        assert drawing.folder == str(png.parent)
    pick = drawing.pick
    assert pick == int(result.pick()["trial"])
    here = plots.write_files(result, str(tmp_path), pick_trial=pick)
    assert _without_ids(aside[0]) == _without_ids(Path(here[0]).read_text(encoding="utf-8"))
    assert aside[1] == Path(here[1]).read_bytes()
    assert f"pick (trial {pick})" in aside[0]


def test_files_are_drawn_here_when_the_child_fails_or_on_one_core(result, monkeypatch):
    from pathlib import Path

    from autoreg import tracking

    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"],
                               stdin=subprocess.PIPE, text=True)
    monkeypatch.setattr(tracking, "_python", lambda *args, **kwargs: failing)
    with tracking._Drawing(result) as drawing:
        paths = [Path(p) for p in drawing.files()]
        assert [p.name for p in paths] == ["pareto.html", "pareto.png"]
        assert all(p.stat().st_size > 1000 for p in paths) and failing.returncode == 3
    monkeypatch.setattr(tracking.os, "cpu_count", lambda: 1)
    with tracking._Drawing(result) as drawing:
        assert drawing._proc is None
        assert all(Path(p).stat().st_size > 1000 for p in drawing.files())


def test_a_drawing_left_early_ends_its_process_and_folder(result):
    import os

    from autoreg.tracking import _Drawing

    with _Drawing(result) as drawing:
        proc, folder = drawing._proc, drawing.folder
    assert proc.returncode is not None and not os.path.exists(folder)
