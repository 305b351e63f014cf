"""Pictures and one number for a search's Pareto front: the hypervolume, an interactive plotly
page (``pareto.html``) and a static matplotlib figure (``pareto.png``).

plotly and matplotlib are imported inside the functions that draw, so importing this module
costs only numpy.
"""

from __future__ import annotations

import contextlib
import functools
import html as _html
import math
import os

import numpy as np

from .errors import UsageError
from .objectives import COLUMNS

# Tableau-10 without its grey (grey means "not on the front" or "infeasible" here), then a few
# more; the same colours in the HTML page and the PNG.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
_GREY, _LIGHT_GREY, _PICK = "#9a9a9a", "#cfcfcf", "#ffd700"
_GROUP_TITLE = "first technique of the recipe"

HYPERVOLUME_DEFINITION = (
    "Hypervolume: every objective is turned into one to minimize (error, 1 - sparsity, "
    "size_bytes). The reference point is the worst value of each among the study's completed "
    "trials: the largest finite error, 1 - sparsity = 1 (sparsity 0) and the largest size. "
    "Each axis is divided by its reference value, so the hypervolume is the fraction of the box "
    "[0, reference] that the front dominates: 0 to 1, where 1 would be a zero-error, all-zero, "
    "zero-byte model. A trial that is the worst on any axis adds nothing, so a study of one trial "
    "scores 0; an axis whose reference is 0 (every trial perfect on it) counts as fully achieved."
)


# -- hypervolume --------------------------------------------------------------------------
def _objective_names(objectives) -> tuple[str, ...]:
    if isinstance(objectives, str):
        objectives = objectives.split(",")
    names = tuple(dict.fromkeys(str(o).strip() for o in objectives))
    unknown = [o for o in names if o not in COLUMNS]
    if not names or unknown:
        raise UsageError(f"objectives are a subset of {', '.join(COLUMNS)}, got {objectives!r}")
    return names


def reference_point(trials, objectives) -> dict:
    """The hypervolume's reference point, keyed by result column in that column's own units.

    ``error``: the largest finite error among ``trials`` (NaN if there is none); ``sparsity``:
    always 0.0 (the worst possible); ``size_bytes``: the largest size. Only the columns of
    ``objectives`` (a subset of ``error``, ``sparsity``, ``size``) are present.
    """
    ref = {}
    for name in _objective_names(objectives):
        col = COLUMNS[name]
        if name == "sparsity":
            ref[col] = 0.0
            continue
        values = trials[col].to_numpy(float) if len(trials) else np.empty(0)
        values = values[np.isfinite(values)]
        ref[col] = float(values.max()) if values.size else math.nan
    return ref


def hypervolume(front, trials, objectives) -> tuple[float, dict]:
    """The normalized hypervolume of ``front`` and the reference point it used.

    Every objective is turned into one to minimize: ``error``, ``1 - sparsity``, ``size_bytes``.
    The reference point is the worst value of each among the study's completed trials
    (``trials``): error, the largest finite error; 1 - sparsity, 1.0 (that is, sparsity 0);
    size_bytes, the largest size. Each axis is divided by its reference value, so the
    hypervolume is the fraction of the box [0, reference] that the front dominates: 0 to 1,
    where 1 would be a zero-error, all-zero, zero-byte model.

    Consequences worth knowing: a trial that is the worst on any axis adds nothing (so a study of
    a single trial scores 0); front rows with a non-finite value are ignored; values outside the
    box are clipped to it; an axis whose reference is 0 (every trial perfect on it) counts as
    fully achieved. Because the reference comes from the study's own trials, compare
    hypervolumes of searches on the same data with similar trials, not across datasets.

    Returns ``(hypervolume, reference_point(trials, objectives))``. Exact for 1, 2 and 3
    objectives (a sweep, O(n^2 log n) in the front size at worst).
    """
    names = _objective_names(objectives)
    ref = reference_point(trials, names)
    if len(front) == 0:
        return 0.0, ref
    axes = []
    for name in names:
        col = COLUMNS[name]
        values = front[col].to_numpy(float)
        if name == "sparsity":
            values, limit = 1.0 - values, 1.0
        else:
            limit = ref[col]
        if not np.isfinite(limit):
            return 0.0, ref
        # A reference of 0 (or below): every trial is perfect on this axis; leave it out.
        axes.append(values / limit if limit > 0 else np.zeros_like(values))
    points = np.column_stack(axes)
    points = points[np.all(np.isfinite(points), axis=1)]
    return _unit_hypervolume(points), ref


def _unit_hypervolume(points) -> float:
    """The volume of [0, 1]^d dominated by ``points`` (n x d, minimized), for d = 1, 2, 3."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[0] == 0:
        return 0.0
    pts = np.clip(pts, 0.0, 1.0)
    d = pts.shape[1]
    if d == 1:
        return float(1.0 - pts[:, 0].min())
    if d == 2:
        return _hv2(pts[:, 0], pts[:, 1])
    if d != 3:
        raise ValueError(f"hypervolume is implemented for 1 to 3 objectives, not {d}")
    # Sweep along z: between consecutive z values the dominated slice is the 2-D hypervolume of
    # the points seen so far.
    pts = pts[np.argsort(pts[:, 2], kind="stable")]
    z = np.append(pts[:, 2], 1.0)
    total = 0.0
    for k in range(len(pts)):
        dz = z[k + 1] - z[k]
        if dz > 0:
            total += dz * _hv2(pts[: k + 1, 0], pts[: k + 1, 1])
    return float(total)


def _hv2(x, y) -> float:
    """The area of [0, 1]^2 dominated by points (x, y), both minimized, inside the square."""
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    best_y = np.minimum.accumulate(y)
    widths = np.diff(np.append(x, 1.0))
    return float(np.sum(widths * (1.0 - best_y)))


# -- shared preparation --------------------------------------------------------------------
def _group(recipe) -> str:
    return str(recipe).split("+")[0] or "none"


def _colours(groups) -> dict:
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(sorted(set(groups)))}


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(value)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def _param_columns(trials) -> list[str]:
    fixed = {"trial", "recipe", "family", "feasible", "pareto", "error", "error_se", "sparsity",
             "size_bytes", "n_features_used", "fit_seconds", "test_error"}
    return [c for c in trials.columns if c not in fixed]


def _hover(row, params, metric, front_ids, pick_trial) -> str:
    trial = int(row["trial"])
    lines = [f"<b>trial {trial}</b>: {_html.escape(str(row['recipe']))}",
             f"family: {_html.escape(str(row.get('family', 'linear')))}"]
    for col in params:
        value = row[col]
        # A technique's on/off switch (e.g. ``pruning``) is already in the recipe.
        if _missing(value) or ("." not in col and isinstance(value, (bool, np.bool_))):
            continue
        lines.append(f"{_html.escape(col)} = {_html.escape(_fmt(value))}")
    err = f"error ({metric}): {row['error']:.5g}"
    if not _missing(row.get("error_se")):
        err += f" ± {row['error_se']:.2g}"
    lines += [err,
              f"sparsity: {row['sparsity']:.3f} ({100 * row['sparsity']:.0f}% zero weights)",
              f"size: {int(row['size_bytes']):,} bytes",
              f"features used: {int(row['n_features_used'])}"]
    if not _missing(row.get("test_error")):
        lines.append(f"test error ({metric}): {row['test_error']:.5g}")
    status = []
    if trial in front_ids:
        status.append("on the Pareto front")
    if trial == pick_trial:
        status.append("the pick")
    if not bool(row.get("feasible", True)):
        status.append("infeasible (breaks a constraint)")
    if status:
        lines.append("<i>" + ", ".join(status) + "</i>")
    return "<br>".join(lines)


def _pick_trial(result, pick_trial):
    if pick_trial is not None:
        from .result import _trial_number

        number = _trial_number(pick_trial)
        if number not in set(result.trials["trial"].astype(int)):
            raise UsageError(f"trial {number} is not a completed trial of this study")
        return number
    if len(result.front) == 0:
        return None
    try:
        return int(result.pick()["trial"])
    except Exception:  # a pick rule that cannot apply: draw the front without a pick
        return None


def _panels(objectives) -> list[str]:
    """The 2-D panels: the error against each other objective (size when error is alone)."""
    others = [o for o in ("size", "sparsity") if o in objectives]
    return others or ["size"]


def _staircase(x, y, maximize_x: bool):
    """The 2-D non-dominated points of (x, y) (y minimized), sorted by x ascending."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size == 0:
        return x, y
    key = -x if maximize_x else x
    order = np.lexsort((y, key))
    keep, best = [], math.inf
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    keep = np.array(keep)
    xs, ys = x[keep], y[keep]
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order]


def _error_limits(errors, front_errors):
    """A y-range for the error that is not crushed by a few diverged trials, and how many
    trials lie above it (``None`` when every trial fits)."""
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return None, 0
    lo, hi = float(errors.min()), float(errors.max())
    front_errors = front_errors[np.isfinite(front_errors)]
    top = float(front_errors.max()) if front_errors.size else hi
    span = max(top - lo, 0.05 * abs(lo), 1e-12)
    cap = max(top + 2 * span, float(np.quantile(errors, 0.9)))
    if hi <= cap:
        return None, 0
    pad = 0.04 * (cap - lo)
    return (lo - pad, cap + pad), int(np.sum(errors > cap + pad))


def _spans_decade(values) -> bool:
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 1 and values.max() > 10 * values.min()


class _Data:
    """What both pictures draw, prepared once."""

    def __init__(self, result, pick_trial):
        trials = result.trials
        self.metric = str(result.settings.get("metric", "error"))
        self.objectives = tuple(result.objectives)
        self.panels = _panels(self.objectives)
        self.pick = _pick_trial(result, pick_trial)
        self.front_ids = {int(t) for t in result.front["trial"]}
        finite = np.isfinite(trials["error"].to_numpy(float)) if len(trials) else []
        self.n_hidden = int(len(trials) - np.sum(finite))
        self.trials = trials[finite] if len(trials) else trials
        t = self.trials
        self.groups = [_group(r) for r in t["recipe"]]
        self.colours = _colours(self.groups)
        on_front = t["trial"].astype(int).isin(self.front_ids).to_numpy()
        feasible = t["feasible"].astype(bool).to_numpy()
        self.front_mask = on_front
        self.infeasible_mask = ~feasible & ~on_front
        self.other_mask = ~on_front & feasible
        self.hv, self.reference = hypervolume(result.front, result.trials, self.objectives)
        self.log_size = _spans_decade(t["size_bytes"])
        self.ylim, self.n_above = _error_limits(t["error"].to_numpy(float),
                                                t.loc[on_front, "error"].to_numpy(float))
        settings = result.settings
        self.study = getattr(result, "study_name", "") or ""
        self.dataset = str(settings.get("dataset", "data"))
        self.n_trials = len(result.trials)
        self.n_front = len(result.front)
        self.n_infeasible = int((~result.trials["feasible"].astype(bool)).sum())
        self.n_failed = len(getattr(result, "failed", ()))

    @functools.cached_property
    def hover(self) -> list[str]:
        """Each trial's hover text; the page's alone, so made when it asks."""
        params = _param_columns(self.trials)
        return [_hover(row, params, self.metric, self.front_ids, self.pick)
                for _, row in self.trials.iterrows()]

    def title(self, sep=" · ") -> str:
        counts = f"{self.n_trials} trials, {self.n_front} on the front"
        if self.n_infeasible:
            counts += f", {self.n_infeasible} infeasible"
        if self.n_failed:
            counts += f", {self.n_failed} failed"
        return f"{self.study}{sep}{self.dataset} · {counts} · hypervolume {self.hv:.3f}"

    def column(self, panel) -> str:
        return COLUMNS[panel]

    def axis_label(self, panel) -> str:
        if panel == "size":
            return "model size (bytes" + (", log scale)" if self.log_size else ")")
        if panel == "sparsity":
            return "sparsity (fraction of weights exactly zero)"
        return f"validation error ({self.metric})"


# -- interactive page ----------------------------------------------------------------------
def pareto_html(result, pick_trial=None) -> str:
    """A self-contained interactive page of the search (plotly.js embedded, works offline).

    Every completed trial is a point coloured by the first technique of its recipe; the front is
    drawn on top as outlined diamonds, the pick as a gold star, infeasible trials in grey.
    Hovering shows the trial's recipe, parameters and measurements. With the three objectives
    the page has a 3-D view (size, sparsity, error) and the two 2-D views error-vs-size and
    error-vs-sparsity; with two objectives, the one 2-D view. ``pick_trial`` (a trial number)
    is the trial to mark as the pick; by default ``result.pick()``'s choice.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    data = _Data(result, pick_trial)
    three_d = len(data.objectives) == 3
    if three_d:
        fig = make_subplots(
            rows=2, cols=2, specs=[[{"type": "scene", "colspan": 2}, None], [{}, {}]],
            row_heights=[0.6, 0.4], vertical_spacing=0.07, horizontal_spacing=0.08,
            subplot_titles=("all three objectives (drag to rotate)", "error vs size",
                            "error vs sparsity"))
        places = {"3d": (1, 1), "size": (2, 1), "sparsity": (2, 2)}
        panels = ["3d", *data.panels]
        height = 1250
    else:
        fig = make_subplots(rows=1, cols=1, subplot_titles=(f"error vs {data.panels[0]}",))
        places = {data.panels[0]: (1, 1)}
        panels = list(data.panels)
        height = 700
    for i, panel in enumerate(panels):
        row, col = places[panel]
        for trace in _traces(go, data, panel, legend=i == 0):
            fig.add_trace(trace, row=row, col=col)
        if panel != "3d":
            _style_2d(fig, data, panel, row, col)
    if three_d:
        fig.update_scenes(
            xaxis=dict(title="size (bytes)", type="log" if data.log_size else "linear"),
            yaxis=dict(title="sparsity"), zaxis=dict(title=f"error ({data.metric})"),
            aspectmode="cube")
    fig.update_layout(
        title=dict(text=_html.escape(data.title()) + "<br><sup>objectives: "
                   f"{', '.join(data.objectives)}; colour: {_GROUP_TITLE}; hover a point for "
                   "its recipe and parameters</sup>", x=0.01),
        legend=dict(title=dict(text=_GROUP_TITLE), itemsizing="constant",
                    groupclick="togglegroup"),
        height=height, template="plotly_white", hovermode="closest",
        margin=dict(l=60, r=30, t=110, b=60))
    div = fig.to_html(full_html=False, include_plotlyjs=True, default_width="100%",
                      default_height=f"{height}px",
                      config={"displaylogo": False, "responsive": True})
    return _page(data, div)


def _traces(go, data, panel, legend):
    t = data.trials
    if panel == "3d":
        def xyz(mask):
            return dict(x=t["size_bytes"][mask].tolist(), y=t["sparsity"][mask].tolist(),
                        z=t["error"][mask].tolist())
        scatter, small, big = go.Scatter3d, 4, 6
    else:
        col = data.column(panel)

        def xyz(mask):
            return dict(x=t[col][mask].tolist(), y=t["error"][mask].tolist())
        scatter, small, big = go.Scatter, 8, 11

    def common(mask, role):
        idx = np.flatnonzero(mask)
        return dict(customdata=t["trial"].iloc[idx].astype(int).tolist(),
                    text=[data.hover[i] for i in idx], hovertemplate="%{text}<extra></extra>",
                    meta={"panel": panel, "role": role})

    groups = np.array(data.groups, dtype=object)
    for g in sorted(data.colours):
        mask = data.other_mask & (groups == g)
        if not mask.any():
            continue
        yield scatter(mode="markers", name=g, legendgroup=g, showlegend=legend,
                      marker=dict(color=data.colours[g], size=small, opacity=0.55),
                      **xyz(mask), **common(mask, "trials"))
    if data.infeasible_mask.any():
        yield scatter(mode="markers", name="infeasible", legendgroup="infeasible",
                      showlegend=legend, marker=dict(color=_GREY, size=small, opacity=0.45),
                      **xyz(data.infeasible_mask), **common(data.infeasible_mask, "infeasible"))
    front = data.front_mask
    if panel != "3d" and front.sum() > 1:
        xs, ys = _staircase(t[col][front], t["error"][front], panel == "sparsity")
        if len(xs) > 1:
            yield go.Scatter(x=xs.tolist(), y=ys.tolist(), mode="lines", hoverinfo="skip",
                             line=dict(color="#444", width=1.2,
                                       shape="vh" if panel == "sparsity" else "hv"),
                             name="best error at each " + panel, legendgroup="front",
                             showlegend=False, meta={"panel": panel, "role": "line"})
    pick = _pick_trace(scatter, data, xyz, panel, big, legend)
    if pick is not None and panel != "3d":
        yield pick  # under the front's diamond, so the pick keeps its technique's colour
    if front.any():
        colours = [data.colours[g] for g, f in zip(data.groups, front, strict=True) if f]
        yield scatter(mode="markers", name=f"Pareto front ({int(front.sum())})",
                      legendgroup="front", showlegend=legend,
                      marker=dict(color=colours, size=big, symbol="diamond",
                                  line=dict(color="black", width=1)),
                      **xyz(front), **common(front, "front"))
    if pick is not None and panel == "3d":
        yield pick  # a ring around the front's diamond


def _pick_trace(scatter, data, xyz, panel, big, legend):
    if data.pick is None:
        return None
    mask = (data.trials["trial"].astype(int) == data.pick).to_numpy()
    if not mask.any():
        return None
    if panel == "3d":
        marker = dict(color="#d4a600", size=big + 8, symbol="circle-open", line=dict(width=4))
    else:
        marker = dict(color=_PICK, size=big + 14, symbol="star",
                      line=dict(color="black", width=1.2))
    return scatter(mode="markers+text", name=f"pick (trial {data.pick})", legendgroup="pick",
                   showlegend=legend, marker=marker, text=[f"★ pick: trial {data.pick}"],
                   textposition="top center",
                   hovertext=[data.hover[int(np.flatnonzero(mask)[0])]],
                   hovertemplate="%{hovertext}<extra></extra>", customdata=[data.pick],
                   meta={"panel": panel, "role": "pick"}, **xyz(mask))


def _style_2d(fig, data, panel, row, col):
    log = panel == "size" and data.log_size
    fig.update_xaxes(title_text=data.axis_label(panel), type="log" if log else "linear",
                     row=row, col=col)
    fig.update_yaxes(title_text=data.axis_label("error"), row=row, col=col)
    if data.ylim is not None:
        fig.update_yaxes(range=list(data.ylim), row=row, col=col)


def _page(data, div) -> str:
    ref = ", ".join(f"{k} = {v:.6g}" for k, v in data.reference.items())
    notes = [f"Hypervolume {data.hv:.4f} (reference point: {ref}). "
             + HYPERVOLUME_DEFINITION]
    if data.pick is not None:
        notes.append(f"The gold star (a gold ring in 3-D) marks the pick, trial {data.pick}.")
    if data.ylim is not None and data.n_above:
        notes.append(f"{data.n_above} trial(s) with a much larger error lie above the 2-D views; "
                     "double-click a view to show everything.")
    if data.n_hidden:
        notes.append(f"{data.n_hidden} trial(s) with a non-finite error are not drawn.")
    body = "".join(f"<p class='note'>{_html.escape(n)}</p>" for n in notes)
    title = _html.escape(f"autoreg Pareto front: {data.study} ({data.dataset})")
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;"
            "margin:12px 20px}} p.note{color:#444;font-size:13px;max-width:1100px}</style>\n"
            f"</head>\n<body>\n{div}\n{body}\n</body>\n</html>\n")


# -- static figure -------------------------------------------------------------------------
def pareto_png(result, path, pick_trial=None) -> None:
    """Write a static PNG of the front to ``path``: error against size and/or sparsity.

    All trials are light grey (infeasible ones as crosses), front trials coloured by the first
    technique of their recipe and joined by the best-error staircase, the pick a gold star.
    ``pick_trial`` as in :func:`pareto_html`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    data = _Data(result, pick_trial)
    n = len(data.panels)
    fig = Figure(figsize=(6.2 * n, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    t = data.trials
    groups = np.array(data.groups, dtype=object)
    for ax, panel in zip(axes, data.panels, strict=True):
        col = data.column(panel)
        x, y = t[col].to_numpy(float), t["error"].to_numpy(float)
        if data.other_mask.any():
            ax.scatter(x[data.other_mask], y[data.other_mask], s=18, color=_LIGHT_GREY,
                       edgecolors="none", zorder=1)
        if data.infeasible_mask.any():
            ax.scatter(x[data.infeasible_mask], y[data.infeasible_mask], s=18, color=_GREY,
                       marker="x", linewidths=0.8, zorder=1)
        front = data.front_mask
        if front.sum() > 1:
            xs, ys = _staircase(x[front], y[front], panel == "sparsity")
            if len(xs) > 1:
                ax.step(xs, ys, where="pre" if panel == "sparsity" else "post",
                        color="#555", linewidth=1.0, zorder=2)
        if front.any():
            ax.scatter(x[front], y[front], s=42, marker="D", zorder=3, linewidths=0.6,
                       c=[data.colours[g] for g in groups[front]], edgecolors="black")
        if data.pick is not None:
            i = np.flatnonzero((t["trial"].astype(int) == data.pick).to_numpy())
            if i.size:
                px, py = x[i[0]], y[i[0]]
                # Behind the front's diamond, so the pick keeps its technique's colour.
                ax.scatter([px], [py], s=520, marker="*", color=_PICK, edgecolors="black",
                           linewidths=0.9, zorder=2.5)
                ax.annotate(f"pick: trial {data.pick}", (px, py), xytext=(12, 14),
                            textcoords="offset points", fontsize=9, zorder=5,
                            arrowprops=dict(arrowstyle="-", color="#333", lw=0.7))
        if panel == "size" and data.log_size:
            ax.set_xscale("log")
        if data.ylim is not None:
            ax.set_ylim(*data.ylim)
            if data.n_above:
                ax.text(0.99, 0.99, f"{data.n_above} trial(s) above, not shown",
                        transform=ax.transAxes, ha="right", va="top", fontsize=8,
                        color="#666")
        ax.set_xlabel(data.axis_label(panel))
        ax.set_ylabel(data.axis_label("error"))
        ax.grid(True, linewidth=0.4, alpha=0.5)
        if len(t) == 0:
            ax.text(0.5, 0.5, "no completed trials", transform=ax.transAxes, ha="center")
    present = sorted({g for g, f in zip(data.groups, data.front_mask, strict=True) if f})
    handles = [Line2D([], [], marker="D", linestyle="", color=data.colours[g],
                      markeredgecolor="black", markersize=6, label=g) for g in present]
    handles.append(Line2D([], [], marker="o", linestyle="", color=_LIGHT_GREY,
                          markersize=6, label="other trials"))
    if data.infeasible_mask.any():
        handles.append(Line2D([], [], marker="x", linestyle="", color=_GREY, label="infeasible"))
    if data.pick is not None:
        handles.append(Line2D([], [], marker="*", linestyle="", color=_PICK,
                              markeredgecolor="black", markersize=12, label="pick"))
    ncols = min(len(handles), 4 * n)  # about what fits across the figure
    fig.legend(handles=handles, fontsize=8, title=f"front, coloured by the {_GROUP_TITLE}",
               title_fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=ncols,
               frameon=False)
    fig.suptitle(data.title(sep="\n"), fontsize=10, y=0.99, va="top")
    _fixed_layout(fig, n, legend_rows=-(-len(handles) // ncols))
    fig.savefig(path, format="png", dpi=120)


def _fixed_layout(fig, n_panels: int, legend_rows: int) -> None:
    """Margins in inches, fitted to this figure's fixed texts: the two-line title, the axis
    labels and tick labels (up to about six characters), the legend below. Matplotlib's
    constrained layout measures every text instead: a third of the figure's time."""
    width, height = fig.get_size_inches()
    left, right, gap = 0.85, 0.2, 0.9
    bottom = 0.75 + 0.2 * legend_rows
    panel = (width - left - right - gap * (n_panels - 1)) / n_panels
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - 0.6 / height,
                        bottom=bottom / height, wspace=gap / panel)


# -- both files ----------------------------------------------------------------------------
FILES = ("pareto.html", "pareto.png")


def write_files(result, folder, pick_trial=None) -> list[str]:
    """Write ``pareto.html`` and ``pareto.png`` into ``folder``; return their paths.

    ``result`` needs only ``trials``, ``front``, ``failed``, ``settings``, ``objectives`` and
    ``study_name`` (and ``pick()`` when ``pick_trial`` is None).
    """
    html, png = (os.path.join(folder, name) for name in FILES)
    with open(html, "w", encoding="utf-8") as fh:
        fh.write(pareto_html(result, pick_trial=pick_trial))
    pareto_png(result, png, pick_trial=pick_trial)
    return [html, png]


def _draw_server() -> None:
    """The body of the process :mod:`autoreg.tracking` draws the files in. It imports the
    plotting libraries first, then reads one line from stdin: the path of a pickled stand-in
    for the result (the fields :func:`write_files` reads) and the pick's trial number (or
    nothing), tab-separated. The files go beside the pickle; the exit code tells whether they
    were written. Started before the search ends, it has the imports done by then."""
    import pickle
    import sys

    with contextlib.suppress(AttributeError, OSError):
        # Its imports take only what CPU the trials and the record leave (os.nice: Unix).
        os.nice(19)
    _import_drawing()
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        sys.exit(1)  # nothing to draw: the record was given up
    path, pick = line.split("\t")
    with open(path, "rb") as fh:
        result = pickle.load(fh)
    write_files(result, os.path.dirname(path), int(pick) if pick else None)


def _import_drawing() -> None:
    """Import what drawing both files needs."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.lines  # noqa: F401
    import plotly.graph_objects  # noqa: F401
