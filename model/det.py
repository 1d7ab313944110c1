"""The detector's trade-off as the field reports it: commands found on speaker-held-out streams against
false alarms per hour of command-free talk, over a sweep of thresholds (a DET curve).

The network runs once over every recording (tune.stream_posteriors); each threshold is replayed on
those posteriors through the real Detector, so each row is exactly what `detect` would report.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from model.checkpoint import LoadedModel
from model.detector import DetectorConfig
from model.stream_eval import WordSpan
from model.tune import pooled_score, replay

THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.30, 0.995, 0.01), 2))


@dataclass
class TalkSet:
    """Command-free recordings' posteriors, one array [frames, C] per file (each from a fresh state)."""
    name: str
    posteriors: list[np.ndarray]
    hours: float


def det_rows(model: LoadedModel, streams: list[tuple[np.ndarray, list[WordSpan], float]], talk: list[TalkSet],
             cfg: DetectorConfig, thresholds=THRESHOLDS) -> list[dict]:
    """One row per threshold: % of the streams' command words found with the right label, wrong and
    false-positive %, and alarms (count and per hour) on each talk set and on all of it."""
    rows = []
    total_hours = sum(t.hours for t in talk)
    for threshold in thresholds:
        c = replace(cfg, threshold=threshold)
        row = {"threshold": threshold}
        if streams:
            score = pooled_score(model, streams, c)
            row.update(found_pct=score["correct_pct"], wrong_pct=score["wrong_pct"],
                       stream_false_positive_pct=score["false_positive_pct"])
        n_all = 0
        for t in talk:
            n = sum(len(replay(model, p, c)) for p in t.posteriors)
            row[f"alarms_{t.name}"] = n
            n_all += n
        if talk:
            row["alarms"] = n_all
            row["alarms_per_hour"] = n_all / total_hours
        rows.append(row)
    return rows


def headline(rows: list[dict], max_alarms_per_hour: float = 1.0, min_found_pct: float = 95.0) -> dict:
    """Commands found at no more than `max_alarms_per_hour`, and alarms per hour at `min_found_pct` found
    (None where no threshold of the sweep gets there)."""
    quiet = [r for r in rows if r.get("alarms_per_hour", 0.0) <= max_alarms_per_hour and "found_pct" in r]
    sensitive = [r for r in rows if r.get("found_pct", 0.0) >= min_found_pct and "alarms_per_hour" in r]
    best_quiet = max(quiet, key=lambda r: (r["found_pct"], -r["threshold"]), default=None)
    best_sensitive = min(sensitive, key=lambda r: (r["alarms_per_hour"], -r["found_pct"]), default=None)
    return {
        f"found_pct_at_{max_alarms_per_hour:g}_per_hour": best_quiet and best_quiet["found_pct"],
        f"threshold_at_{max_alarms_per_hour:g}_per_hour": best_quiet and best_quiet["threshold"],
        f"alarms_per_hour_at_{min_found_pct:g}_pct": best_sensitive and best_sensitive["alarms_per_hour"],
        f"threshold_at_{min_found_pct:g}_pct": best_sensitive and best_sensitive["threshold"],
    }


def plot(path, curves: dict[str, list[dict]], title: str) -> None:
    """Commands found (%) against false alarms per hour (log scale), one line per model or setting."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, rows in curves.items():
        floor = 0.1   # zero alarms drawn at the axis' floor (log scale)
        ax.plot([max(floor, r["alarms_per_hour"]) for r in rows], [r["found_pct"] for r in rows], marker="o",
                markersize=2, label=name)
    ax.set_xscale("log")
    ax.axvline(1.0, color="gray", linestyle=":", linewidth=1)
    ax.axhline(95.0, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("false alarms per hour of talk (0 drawn at 0.1)")
    ax.set_ylabel("commands found with the right label (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
