"""`raykd report DIR... --out OUT`: one static HTML page (`OUT/index.html`) with PNG plots under `OUT/img/`.

Per run: training curves (loss, learning rate, samples/s and every other `train/` scalar) and every
evaluation metric over steps (one figure per task and data set). Several runs, or a sweep's trials:
curves overlaid and the best value of the metric per run/trial. Evaluations: ELEVATER results as a
per-data-set bar chart comparing the checkpoints (one per setting), other `raykd eval` results as one
chart per task.
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

from raykd.report import plots
from raykd.report.sources import Evaluation, Run, Sweep, load

TRAIN_FIRST = ("train/loss", "train/lr", "train/samples_per_s")
STYLE = """body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin-bottom:4px}.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #eee;padding:4px}figcaption{font-size:12px;color:#555}
img{max-width:640px}table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}
.best{background:#fff1dc}.muted{color:#777;font-size:12px}"""


class Page:
    def __init__(self, out: Path, title: str):
        self.out, self.title, self.parts, self.images = out, title, [], []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="muted">{html.escape(text)}</p>')

    def figures(self, made: list[tuple[Path, str]]) -> None:
        if not made:
            return
        cells = [f'<figure><img src="{p.relative_to(self.out).as_posix()}" alt="{html.escape(c)}">'
                 f"<figcaption>{html.escape(c)}</figcaption></figure>" for p, c in made]
        self.images += [p for p, _ in made]
        self.parts.append('<div class="grid">' + "".join(cells) + "</div>")

    def table(self, header: list[str], rows: list[list], highlight: int | None = None) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            f'<tr{" class=best" if i == highlight else ""}>' + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
            + "</tr>" for i, row in enumerate(rows))
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def image(self, *names: str) -> Path:
        return self.out / "img" / ("-".join(_slug(n) for n in names) + ".png")

    def write(self) -> Path:
        body = "\n".join(self.parts)
        text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
        path = self.out / "index.html"
        path.write_text(text)
        return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def ordered_train_keys(runs: list[Run]) -> list[str]:
    keys = {k for run in runs for k in run.train}
    return [k for k in TRAIN_FIRST if k in keys] + sorted(keys - set(TRAIN_FIRST))


def metric_groups(keys) -> dict[str, list[str]]:
    """`<task>/<dataset>/<metric>` keys grouped by `<task>/<dataset>`."""
    groups: dict[str, list[str]] = {}
    for key in sorted(keys):
        groups.setdefault(key.rsplit("/", 1)[0] if key.count("/") >= 2 else key, []).append(key)
    return groups


def run_section(page: Page, run: Run, section: str) -> None:
    page.heading(f"Run {run.name}")
    page.note(str(run.path))
    train = [(plots.curves({run.name: run.train[k]}, k, page.image(section, k)), k)
             for k in ordered_train_keys([run])]
    page.heading("Training", 3)
    page.figures(train) if train else page.note("no training scalars (tensorboard/)")
    groups = metric_groups(run.metrics)
    page.heading("Evaluation metrics over steps", 3)
    made = [(plots.curves({k.rsplit("/", 1)[-1]: run.metrics[k] for k in keys}, group, page.image(section, group)), group)
            for group, keys in groups.items()]
    page.figures(made) if made else page.note("no evaluation results (results.jsonl)")
    if run.metrics:
        page.table(["metric", "last", "best", "at step"],
                   [[k, s[-1][1], max(v for _, v in s), max(s, key=lambda x: x[1])[0]] for k, s in sorted(run.metrics.items())])


def comparison_section(page: Page, runs: list[Run], section: str, metric: str = "", mode: str = "max",
                       best: str = "") -> None:
    """Curves of several runs overlaid, and the best value of `metric` (default: each metric's last) per run."""
    page.figures([(plots.curves({r.name: r.train.get(key, []) for r in runs}, key, page.image(section, key)), key)
                  for key in ordered_train_keys(runs)])
    keys = sorted({k for r in runs for k in r.metrics})
    if metric and metric not in keys and any(metric in r.scalars for r in runs):
        keys = [metric] + keys
    made = [(plots.curves({r.name: r.metrics.get(k) or r.scalars.get(k, []) for r in runs}, k, page.image(section, k)), k)
            for k in ([metric] if metric in keys else []) + [k for k in keys if k != metric]]
    page.heading("Evaluation metrics over steps, overlaid", 3)
    page.figures(made)
    if metric:
        pick = max if mode == "max" else min
        values = []
        for r in runs:
            series = r.metrics.get(metric) or r.scalars.get(metric) or []
            values.append(pick(v for _, v in series) if series else None)
        page.heading(f"Best {metric} per run ({mode})", 3)
        page.figures([(plots.ranking([r.name for r in runs], values, f"best {metric} ({mode})",
                                     page.image(section, "best", metric), best=best), f"best {metric}")])


def sweep_section(page: Page, sweep: Sweep, section: str) -> None:
    page.heading(f"Sweep {sweep.name}")
    page.note(f"{sweep.path}: {len(sweep.trials)} trial(s)" + (f", metric {sweep.metric} ({sweep.mode})" if sweep.metric else ""))
    best_id = (sweep.best or {}).get("trial_id", "")
    if sweep.rows:
        header = list(sweep.rows[0])
        highlight = next((i for i, r in enumerate(sweep.rows) if r.get("trial_id") == best_id), None)
        page.table(header, [[r.get(h) for h in header] for r in sweep.rows], highlight)
    if sweep.rows and sweep.metric:
        page.heading(f"{sweep.metric} per trial (last reported, trials.csv)", 3)
        page.figures([(plots.ranking([str(r["trial_id"]) for r in sweep.rows], [r.get(sweep.metric) for r in sweep.rows],
                                     f"{sweep.metric} ({sweep.mode})", page.image(section, "trials", sweep.metric),
                                     best=best_id), f"{sweep.metric} per trial; best {best_id or '-'}")])
    if sweep.trials:
        page.heading("Trials compared", 3)
        comparison_section(page, sweep.trials, section, sweep.metric, sweep.mode, best_id)


def evaluation_section(page: Page, evals: list[Evaluation]) -> None:
    page.heading("Evaluations")
    page.note(", ".join(f"{e.name}: {e.path}" + (f" ({e.model})" if e.model else "") for e in evals))
    elevater = [e for e in evals if e.is_elevater]
    for setting in sorted({d["setting"] for e in elevater for d in e.datasets}):
        datasets = sorted({d["dataset"] for e in elevater for d in e.datasets if d["setting"] == setting})
        means, stds = {}, {}
        for e in elevater:
            by = {d["dataset"]: d for d in e.datasets if d["setting"] == setting}
            means[e.name] = [by[d]["mean"] if d in by else None for d in datasets]
            stds[e.name] = [by[d].get("std") if d in by else None for d in datasets]
        page.heading(f"ELEVATER, {setting}", 3)
        page.figures([(plots.bars(datasets, means, f"ELEVATER {setting}: per data set", page.image("elevater", setting),
                                  errors=stds), f"ELEVATER {setting} (mean ± std over seeds)")])
        page.table(["dataset"] + list(means), [[d] + [means[n][i] for n in means] for i, d in enumerate(datasets)])
    others = [e for e in evals if not e.is_elevater]
    tasks: dict[str, list[str]] = {}
    for key in sorted({k for e in others for k in e.metrics}):
        tasks.setdefault(key.split("/", 1)[0], []).append(key)
    for task, keys in tasks.items():
        labels = [k.split("/", 1)[1] if "/" in k else k for k in keys]
        page.figures([(plots.bars(labels, {e.name: [e.metrics.get(k) for k in keys] for e in others}, task,
                                  page.image("eval", task)), f"{task}: {len(keys)} metric(s)")])


def unique_names(items: list) -> None:
    """Give items that share a folder name their parent's name too (two `eval/` folders stay apart)."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
    for item in items:
        if seen[item.name] > 1:
            item.name = f"{item.path.parent.name}/{item.path.name}"


def default_metric(runs: list[Run]) -> str:
    """The metric runs are ranked by when none is given: a top-1 accuracy if there is one."""
    keys = sorted({k for r in runs for k in r.metrics})
    return next((k for k in keys if k.endswith("/top1")), keys[0] if keys else "")


def build_report(paths: list[str | Path], out: str | Path, title: str = "raykd report", metric: str = "",
                 mode: str = "max") -> Path:
    """Write `out/index.html` (+ `out/img/*.png`) for the runs, sweeps and evaluations at `paths`;
    `metric`/`mode` rank several runs (default: a top-1 accuracy, higher is better)."""
    out = Path(out).resolve()
    (out / "img").mkdir(parents=True, exist_ok=True)
    items = [load(p) for p in paths]
    unique_names(items)
    page = Page(out, title)
    runs = [i for i in items if isinstance(i, Run)]
    for n, run in enumerate(runs):
        run_section(page, run, f"run{n}")
    if len(runs) > 1:
        page.heading("Runs compared")
        comparison_section(page, runs, "runs", metric=metric or default_metric(runs), mode=mode)
    for n, sweep in enumerate(i for i in items if isinstance(i, Sweep)):
        sweep_section(page, sweep, f"sweep{n}")
    evals = [i for i in items if isinstance(i, Evaluation)]
    if evals:
        evaluation_section(page, evals)
    return page.write()
