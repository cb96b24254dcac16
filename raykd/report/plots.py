"""PNG figures for `raykd report` (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

from raykd.report.sources import Series  # noqa: E402

WIDTH, HEIGHT, DPI = 6.4, 3.6, 100


def curves(lines: dict[str, Series], title: str, path: Path, ylabel: str = "", log_y: bool = False) -> Path:
    """One line per label over steps (a single point is drawn as a marker)."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    for label, series in lines.items():
        if series:
            steps, values = zip(*series)
            ax.plot(steps, values, marker="o" if len(series) < 12 else None, markersize=3, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log_y and all(v > 0 for s in lines.values() for _, v in s):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def bars(groups: list[str], values: dict[str, list[float | None]], title: str, path: Path, ylabel: str = "",
         errors: dict[str, list[float | None]] | None = None) -> Path:
    """Grouped bars: one group per entry of `groups` (e.g. a data set), one bar per label (e.g. a checkpoint)."""
    labels = list(values)
    n = max(len(labels), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(WIDTH, 0.5 * len(groups) * max(n, 2)), HEIGHT + 0.6), dpi=DPI)
    for i, label in enumerate(labels):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None and math.isfinite(v) else 0.0 for v in values[label]]
        err = [e or 0.0 for e in (errors or {}).get(label, [])] or None
        ax.bar(xs, ys, width, yerr=err, capsize=2 if err else 0, label=label)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center",
                       fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if n > 1:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def ranking(labels: list[str], values: list[float | None], title: str, path: Path, best: str = "") -> Path:
    """Horizontal bars, one per trial/run, the best one highlighted."""
    fig, ax = plt.subplots(figsize=(WIDTH, max(1.6, 0.35 * len(labels) + 1.0)), dpi=DPI)
    ys = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    colours = ["tab:orange" if label == best else "tab:blue" for label in labels]
    ax.barh(range(len(labels)), ys, color=colours)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    for i, v in enumerate(values):
        ax.text(ys[i], i, f" {v:.4g}" if v is not None else " -", va="center", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
