"""Model cards: what a model version is, how it was measured, and on what data.

Rendered only from what the registry stored with the version (metrics,
readiness report, parameters, library versions): a card never recomputes a
number, so it shows exactly what was measured when the model was trained.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in workers and CI

import matplotlib.pyplot as plt

from integration.store.models import ModelVersion


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def text_card(row: ModelVersion) -> str:
    """A plain-text card for the terminal."""
    m = row.metrics or {}
    lines = [
        f"{row.kind} model v{row.version} — {row.status}",
        f"trained {row.trained_at:%Y-%m-%d %H:%M} UTC on data up to {row.cutoff:%Y-%m-%d}"
        + (
            f" (snapshots {row.train_start:%Y-%m-%d} … {row.train_end:%Y-%m-%d})"
            if row.train_start and row.train_end
            else ""
        ),
        f"estimator: {(row.params or {}).get('estimator', '?')}",
        f"label: {(row.params or {}).get('label', '?')}",
    ]
    if (row.params or {}).get("mode") == "rules":
        lines.append("MODE: rules/fit score — the data did not pass the readiness floor")
    if (row.params or {}).get("mode_why"):
        lines.append(f"why this mode: {row.params['mode_why']}")
    if m.get("not_measured"):
        lines.append(f"NOT MEASURED: {m['not_measured']}")
    if m.get("evaluated_on"):
        lines.append(f"measured on: {m['evaluated_on']}")
    for title, block in (("held-out", m.get("held_out")), ("backtest", m.get("backtest"))):
        if block:
            lines.append(f"{title}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in block.items()))
    for bucket in m.get("buckets", []):
        lines.append(
            f"  bucket {bucket['bucket']:<10} conversion {bucket['conversion']:.2%} "
            f"({bucket['rows']:,} rows)"
        )
    for action, block in (m.get("per_action") or {}).items():
        lines.append(f"  {action}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in block.items()))
    flagged = [
        f"{dimension}={s['segment']} ({s['flag']})"
        for dimension, segments in (m.get("by_segment") or {}).items()
        for s in segments
        if s.get("flag") not in (None, "ok")
    ]
    if flagged:
        lines.append("calibration flags: " + ", ".join(flagged))
    for check in (row.readiness or {}).get("checks", []):
        lines.append(
            f"  readiness {check['status']:<4} {check['name']}: {_fmt(check['value'])}"
            f" (threshold {_fmt(check['threshold'])})"
        )
    lines.append(
        "libraries: " + ", ".join(f"{k} {v}" for k, v in (row.library_versions or {}).items())
    )
    return "\n".join(lines)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _calibration_plot(points: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(4.2, 4))
    predicted = [p["predicted"] for p in points]
    observed = [p["observed"] for p in points]
    top = max([*predicted, *observed, 0.01]) * 1.1
    ax.plot([0, top], [0, top], color="#999", linestyle="--", linewidth=1, label="perfect")
    ax.plot(predicted, observed, marker="o", color="#1f5fa8", label="model")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title("Calibration (held-out)")
    ax.legend(loc="upper left")
    return _png(fig)


def _bucket_plot(buckets: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.bar([b["bucket"] for b in buckets], [b["conversion"] for b in buckets], color="#1f5fa8")
    ax.set_ylabel("conversion")
    ax.set_title("Conversion by score bucket (held-out)")
    ax.tick_params(axis="x", rotation=20)
    return _png(fig)


def _importance_plot(items: list[dict]) -> str:
    items = sorted(items, key=lambda i: i["importance"])[-15:]
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(items) + 1))
    ax.barh([i["feature"] for i in items], [i["importance"] for i in items], color="#1f5fa8")
    ax.set_xlabel("mean |contribution| (log-odds)")
    ax.set_title("Feature importance")
    return _png(fig)


def _qini_plot(curves: dict[str, dict]) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4))
    for name, curve in curves.items():
        ax.plot(curve["x"], curve["y"], label=name)
        if curve.get("random"):
            ax.plot(curve["x"], curve["random"], linestyle="--", color="#999", linewidth=1)
    ax.set_xlabel("share of leads targeted")
    ax.set_ylabel("incremental conversions (Qini)")
    ax.set_title("Qini curve (held-out)")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _table(rows: Iterable[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html_card(row: ModelVersion) -> str:
    """A self-contained HTML card with plots (PNG embedded), for the admin UI and files."""
    m = row.metrics or {}
    parts = [
        f"<h1>{html.escape(row.kind)} model v{row.version} "
        f"<small>({html.escape(row.status)})</small></h1>",
        f"<pre>{html.escape(text_card(row))}</pre>",
    ]
    plots = (
        ("calibration", _calibration_plot),
        ("buckets", _bucket_plot),
        ("qini_curves", _qini_plot),
        ("importance", _importance_plot),
    )
    for key, plot in plots:
        if m.get(key):
            parts.append(f'<img alt="{key}" src="data:image/png;base64,{plot(m[key])}">')
    for dimension, segments in (m.get("by_segment") or {}).items():
        parts.append(f"<h3>Calibration by {html.escape(dimension)}</h3>")
        parts.append(_table(segments, ["segment", "rows", "predicted", "observed", "z", "flag"]))
    if m.get("segments"):
        parts.append("<h3>Uplift by segment (shrunk, bootstrap interval)</h3>")
        parts.append(_table(m["segments"], list(m["segments"][0].keys())))
    if m.get("by_rep"):
        parts.append(
            "<h3>Uplift by rep (diagnostic only: rep is never a targeting feature; "
            "books differ, so this mixes skill with book)</h3>"
        )
        parts.append(_table(m["by_rep"], list(m["by_rep"][0].keys())))
    checks = (row.readiness or {}).get("checks")
    if checks:
        parts.append("<h3>Data readiness</h3>")
        parts.append(_table(checks, ["name", "value", "threshold", "status", "fix"]))
    style = (
        "body{font-family:sans-serif;max-width:980px;margin:2em auto}img{margin:8px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
    )
    head = f"<head><meta charset='utf-8'><style>{style}</style></head>"
    return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"


def _figures(block: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k} {block[k]:.3f}" for k in keys if isinstance(block.get(k), float))


def trained_lines(result: dict[str, Any]) -> list[str]:
    """What `train` and `run` say about the versions just trained."""
    lines = [
        f"propensity v{result['version']} {result['status']} ({result['estimator']}, "
        f"{result['mode']} mode): held-out " + _figures(result, ("auc", "brier", "ece"))
        + f"; {result['decision']}"
    ]  # fmt: skip
    uplift = result.get("uplift")
    if uplift:
        lines.append(
            f"uplift v{uplift['version']} {uplift['status']} ({uplift['estimator']}): held-out "
            + _figures(uplift, ("qini_auc", "best_action_gain_per_1000"))
            + f"; {uplift['decision']}"
        )
    elif result.get("uplift_skipped"):
        lines.append(f"uplift not trained: {result['uplift_skipped']}")
    return lines


def scored_line(s: dict[str, Any]) -> str:
    buckets = ", ".join(f"{k} {v}" for k, v in (s.get("buckets") or {}).items())
    line = (
        f"scored {s['scored']} leads ({s['written']} changed) with propensity v{s['model_version']}"
    )
    if s.get("uplift_version"):
        line += f" and uplift v{s['uplift_version']}"
    line += f"; buckets: {buckets}" if buckets else ""
    queues = ", ".join(f"{k} {v}" for k, v in (s.get("queues") or {}).items() if k != "none")
    if queues:
        line += f"; queues: {queues}" + (f" ({s['spilled']} spilled)" if s.get("spilled") else "")
    for alert in s.get("drift_alerts") or []:
        line += f"\nDRIFT: {alert}"
    return line
