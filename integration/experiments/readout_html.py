"""The experiment readout as one self-contained HTML page (plots embedded as PNG).

Same house style as `integration.model_card`: rendered only from a computed
`Readout` (and, optionally, the `integration.operating_metrics` dict), never
recomputing a number, so the page shows exactly what the CLI printed.
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in workers and CI

import matplotlib.pyplot as plt

from integration.experiments.readout import Comparison, Estimate, Readout
from integration.model_card import _png, _table

ITT_COLOUR = "#1f5fa8"
CLEAN_COLOUR = "#d9822b"


def _label(c: Comparison) -> str:
    return f"{c.experiment} · {c.arm} · {c.stratum}"


def forest_plot(readout: Readout) -> str | None:
    """Uplift with its interval per arm and stratum: ITT and excluding overrides.

    Returns:
        The PNG as base64, or None when no comparison has data on both sides.
    """
    rows = [c for c in readout.comparisons() if c.itt.uplift_pp is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.4))
    y = list(range(len(rows)))[::-1]
    for offset, colour, name, pick in (
        (0.14, ITT_COLOUR, "intention to treat", lambda c: c.itt),
        (-0.14, CLEAN_COLOUR, "excluding overrides", lambda c: c.excluding_overrides),
    ):
        points = [(yy + offset, pick(c)) for yy, c in zip(y, rows, strict=True)]
        points = [(yy, e) for yy, e in points if e.uplift_pp is not None]
        ax.errorbar(
            [e.uplift_pp for _, e in points],
            [yy for yy, _ in points],
            xerr=[
                [e.uplift_pp - e.ci_low_pp for _, e in points],
                [e.ci_high_pp - e.uplift_pp for _, e in points],
            ],
            fmt="o" if offset > 0 else "s",
            color=colour,
            capsize=3,
            markersize=4,
            label=name,
        )
    ax.axvline(0, color="#999", linestyle="--", linewidth=1)
    ax.set_yticks(y, [_label(c) for c in rows], fontsize=8)
    ax.set_xlabel(f"uplift, percentage points ({readout.confidence:.0%} interval)")
    ax.set_title("Uplift against control", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return _png(fig)


def _interval(e: Estimate) -> str:
    if e.uplift_pp is None:
        return ""
    return f"{e.uplift_pp:+.2f} [{e.ci_low_pp:+.2f}, {e.ci_high_pp:+.2f}]"


def _img(alt: str, png: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{png}">'


def _estimate_cells(prefix: str, e: Estimate) -> dict[str, Any]:
    return {f"{prefix} uplift pp": _interval(e), f"{prefix} verdict": e.verdict}


def _comparison_rows(readout: Readout) -> list[dict[str, Any]]:
    rows = []
    for c in readout.comparisons():
        rows.append(
            {
                "experiment": c.experiment,
                "arm": c.arm,
                "stratum": c.stratum,
                "treated": f"{c.itt.conversions_treated}/{c.itt.n_treated}",
                "control": f"{c.itt.conversions_control}/{c.itt.n_control}",
                "rate treated": c.itt.rate_treated,
                "rate control": c.itt.rate_control,
                **_estimate_cells("ITT", c.itt),
                **_estimate_cells("excl. overrides", c.excluding_overrides),
                "override rate": "unknown" if c.override_rate is None else c.override_rate,
                "design effect t/c": (
                    f"{c.itt.design_effect_treated:.2f}/{c.itt.design_effect_control:.2f}"
                ),
            }
        )
    return rows


def _srm_rows(readout: Readout) -> list[dict[str, Any]]:
    rows = []
    for e in readout.experiments:
        s = e.srm
        arms = "; ".join(
            f"{arm} {n:,} ({s.observed_share[arm]:.1%} vs {_share(s.designed_share[arm])})"
            for arm, n in s.units.items()
        )
        rows.append(
            {
                "experiment": e.experiment,
                "status": "MISMATCH" if s.flagged else "ok",
                "units by arm (observed vs designed)": arms,
                "chi2": "" if s.chi2 is None else s.chi2,
                "p": "" if s.p_value is None else f"{s.p_value:.3g}",
                "note": s.note,
                "leads (closed window)": f"{e.leads:,} ({e.closed:,})",
                "override rate": "unknown" if e.override_rate is None else e.override_rate,
            }
        )
    return rows


def _share(value: float | None) -> str:
    return "not designed" if value is None else f"{value:.1%}"


def _wasted_plot(by_month: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    months = [m["month"] for m in by_month]
    shares = [m["wasted_share"] or 0.0 for m in by_month]
    ax.plot(months, shares, marker="o", color=ITT_COLOUR)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("share of touches on sure things + lost causes")
    ax.set_title("Wasted touches by month")
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def _operating_parts(operating: dict[str, Any]) -> list[str]:
    parts = [f"<h2>Operating metrics <small>(as of {html.escape(operating['as_of'])})</small></h2>"]
    tables = (
        ("Lead → opportunity by score bucket", "conversion_by_bucket"),
        ("Lead → opportunity by source", "conversion_by_source"),
        ("Speed to first touch by bucket (hours)", "speed_to_first_touch"),
    )
    for title, key in tables:
        rows = operating.get(key) or []
        if rows:
            parts.append(f"<h3>{html.escape(title)}</h3>")
            parts.append(_table(rows, list(rows[0].keys())))
    wasted = operating.get("wasted_touches") or {}
    by_month = wasted.get("by_month") or []
    if by_month:
        parts.append("<h3>Wasted touches (sure things and lost causes)</h3>")
        parts.append(
            f'<img alt="wasted_touches" src="data:image/png;base64,{_wasted_plot(by_month)}">'
        )
        parts.append(_table(by_month, list(by_month[0].keys())))
    return parts


def readout_html(readout: Readout, operating: dict[str, Any] | None = None) -> str:
    """A self-contained HTML page: forest plot, comparison and SRM tables, operating metrics."""
    parts = [
        "<h1>Experiment readout</h1>",
        f"<p>{html.escape(f'{readout.confidence:.0%} intervals: {readout.method}.')} "
        "ITT keeps every lead in its assigned arm; <i>excluding overrides</i> drops "
        "leads whose arm a rep overrode. A sample-ratio mismatch (p &lt; 0.001) means "
        "the experiment's assignment or data is broken.</p>",
    ]
    flagged = [e.experiment for e in readout.experiments if e.srm.flagged]
    if flagged:
        parts.append(
            "<p class='alert'>Sample-ratio mismatch in: "
            + html.escape(", ".join(flagged))
            + ". Do not act on their uplift.</p>"
        )
    plot = forest_plot(readout)
    if plot:
        parts.append(_img("forest_plot", plot))
    if readout.experiments:
        parts.append("<h2>Sample ratio</h2>")
        srm = _srm_rows(readout)
        parts.append(_table(srm, list(srm[0].keys())))
    comparisons = _comparison_rows(readout)
    if comparisons:
        parts.append("<h2>Uplift by arm and stratum</h2>")
        parts.append(_table(comparisons, list(comparisons[0].keys())))
    if not readout.experiments:
        parts.append("<p>No experiment has assigned leads yet.</p>")
    if operating:
        parts += _operating_parts(operating)
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{margin:8px}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px}"
        ".alert{color:#a00;font-weight:bold}"
    )
    head = (
        f"<head><meta charset='utf-8'><title>leadlift readout</title><style>{style}</style></head>"
    )
    return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"
