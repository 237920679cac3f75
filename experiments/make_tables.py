"""Turn finished runs into the paper's tables: mean +- std over seeds, next to the published number.

Scans run directories (anything with a ``summary.json`` and ``.hydra/overrides.yaml``) below the given
folders, groups them by their ``experiment=<preset>`` override, and prints one Markdown row per preset. A run
counts when it is finished (``engine.lifecycle.is_finished``, the test of ``train.resume=auto`` and
``reproduce.py``) or is a checkpoint evaluation (``train.do=False``, status ``evaluated``).
The published numbers come from each preset's ``paper:`` node (``cfg/experiment/``: table, row, published
mean/std per summary.json key, parameter count). ``experiments/reproduce.py`` uses the same functions as
the table step of a sweep.

    python experiments/make_tables.py outputs multirun                # all presets found
    python experiments/make_tables.py multirun --prefix t3_ --csv t3.csv --plot t3.png

The metric is ``best_test_accuracy`` for ``protocol=paper`` runs (the paper's best-epoch protocol) and
``test_accuracy`` (at the best-validation epoch) for clean runs and for paper runs that have a validation part of
their own (the CKConv line's sequence sets, ``paper.table: ck``); where top-5 accuracy was published or measured
(ImageNet-32), ``test_accuracy_top5`` (top-5 at that epoch) gets two more columns; cross-resolution runs report
source, out-of-the-box, difference and final accuracy.
"""
from __future__ import annotations

import argparse
import csv
import functools
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project runs from its root (config, models, ... are not installed)

from engine.lifecycle import is_finished, read_summary  # noqa: E402  (one definition of a finished run)

CROSSRES_FIELDS = ("source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy")
ACCURACY = "best_test_accuracy"  # the key of single-number rows (the paper's best-epoch protocol)
TOP5 = "test_accuracy_top5"      # top-5 accuracy at the selected epoch (train.report_top5_acc=True)
# A checkpoint evaluation (run_experiment.py train.do=False) of a preset's weights: a result of the preset too.
EVALUATED = "evaluated"


@functools.lru_cache(maxsize=None)
def paper_info(preset: str) -> dict:
    """The preset's ``paper:`` node as a plain dict ({} for a run without a preset or an unknown preset)."""
    from config import compose_config, group_options, run_spec

    if preset not in group_options("experiment"):
        return {}
    return run_spec(compose_config([f"experiment={preset}"])).config["paper"]


def published(preset: str) -> dict[str, dict]:
    """``{summary key: {"mean": .., "std": ..}}`` as published for the preset ({} if nothing was)."""
    return paper_info(preset).get("published", {})


def run_preset(run_dir: Path) -> str | None:
    """The ``experiment=`` preset a run directory was launched with (None: not a Hydra run directory)."""
    overrides_path = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_path.exists():
        return None
    overrides = yaml.safe_load(overrides_path.read_text()) or []
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "(default)")


def counts_as_run(summary: dict | None) -> bool:
    """A finished run (:func:`engine.lifecycle.is_finished`) or a checkpoint evaluation: a row's result."""
    return is_finished(summary) or bool(summary) and summary.get("status") == EVALUATED


def find_runs(roots: list[Path]) -> dict[str, list[dict]]:
    """``{preset: [summary, ...]}`` for every finished run (or checkpoint evaluation) below ``roots``."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for root in roots:
        for summary_path in sorted(root.rglob("summary.json")):
            preset, summary = run_preset(summary_path.parent), read_summary(summary_path.parent)
            if preset is not None and counts_as_run(summary):
                runs[preset].append(summary)
    return runs


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"


def _published_text(result: dict | None) -> str:
    if not result or result.get("mean") is None:
        return "-"
    std = result.get("std")
    return f"{result['mean']:.2f}" + (f" +- {std:.2f}" if std is not None else "")


def table_rows(runs: dict[str, list[dict]], presets: list[str] | None = None) -> list[dict]:
    """One row per preset (those of ``runs``, or ``presets`` in that order, with '-' where no run finished)."""
    rows = []
    for preset in presets if presets is not None else sorted(runs):
        summaries = runs.get(preset, [])
        paper = published(preset)
        seeds = sorted({s.get("seed") for s in summaries if s.get("seed") is not None})
        params = summaries[0].get("no_params") if summaries else paper_info(preset).get("no_params")
        row = {"preset": preset, "row": paper_info(preset).get("row", ""), "runs": len(summaries),
               "seeds": ",".join(map(str, seeds)), "params": f"{params:,}" if isinstance(params, int) else "-"}
        crossres = any(f in paper for f in CROSSRES_FIELDS) or (summaries and CROSSRES_FIELDS[0] in summaries[0])
        if crossres:
            for field in CROSSRES_FIELDS:
                values = [100 * s[field] for s in summaries if field in s]
                row[field] = mean_std(values)
                row[f"paper_{field}"] = _published_text(paper.get(field))
                row[f"_{field}_values"] = values
        else:
            metric = "best_test_accuracy" if (summaries[0].get("protocol") if summaries else "paper") == "paper" \
                else "test_accuracy"
            if summaries and all(s.get(metric) is None for s in summaries):
                # protocol=paper with a validation part of its own (the CKConv line's Speech Commands and Character
                # Trajectories): the published number is the test accuracy at the best validation epoch.
                metric = "test_accuracy"
            values = [100 * s[metric] for s in summaries if s.get(metric) is not None]
            reference = paper.get(metric) or paper.get(ACCURACY)
            row.update(metric=metric, ours=mean_std(values), paper=_published_text(reference), _values=values)
            if values and reference and reference.get("mean") is not None:
                row["diff"] = f"{statistics.mean(values) - reference['mean']:+.2f}"
            top5 = [100 * s[TOP5] for s in summaries if s.get(TOP5) is not None]
            if top5 or paper.get(TOP5):
                row.update(ours_top5=mean_std(top5), paper_top5=_published_text(paper.get(TOP5)))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = []
    plain = [r for r in rows if "ours" in r]
    if plain:
        top5 = any("ours_top5" in r for r in plain)
        lines += ["| preset | row | seeds (n) | params | metric | ours (%) | paper (%) | diff |"
                  + (" top-5 ours (%) | top-5 paper (%) |" if top5 else ""),
                  "|---|---|---|---|---|---|---|---|" + ("---|---|" if top5 else "")]
        lines += [f"| {r['preset']} | {r['row']} | {r['seeds'] or '-'} ({r['runs']}) | {r['params']} | {r['metric']} | "
                  f"{r['ours']} | {r['paper']} | {r.get('diff', '-')} |"
                  + (f" {r.get('ours_top5', '-')} | {r.get('paper_top5', '-')} |" if top5 else "") for r in plain]
    cross = [r for r in rows if "ours" not in r]
    if cross:
        lines += [""] if lines else []
        lines += ["| preset | seeds (n) | " + " | ".join(f"{f} (paper)" for f in CROSSRES_FIELDS) + " |",
                  "|---|---|" + "---|" * len(CROSSRES_FIELDS)]
        lines += [f"| {r['preset']} | {r['seeds'] or '-'} ({r['runs']}) | "
                  + " | ".join(f"{r[f]} ({r[f'paper_{f}']})" for f in CROSSRES_FIELDS) + " |" for r in cross]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    public = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    fields = sorted({key for row in public for key in row})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(public)


def plot(rows: list[dict], path: Path, title: str = "") -> Path | None:
    """Bar chart: our mean (+- std over seeds, dots = seeds) next to the published number, per preset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = []  # (label, our values, published mean, published std)
    for r in rows:
        if "ours" in r:
            reference = published(r["preset"]).get(ACCURACY) or {}
            entries.append((r["preset"], r["_values"], reference.get("mean"), reference.get("std")))
        else:
            for field in CROSSRES_FIELDS:
                reference = published(r["preset"]).get(field) or {}
                entries.append((f"{r['preset']}\n{field}", r[f"_{field}_values"], reference.get("mean"),
                                reference.get("std")))
    if not entries:
        return None
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(entries) + 2), 4.2))
    xs = range(len(entries))
    width = 0.38
    for x, (_, values, mean, std) in zip(xs, entries):
        if values:
            ax.bar(x - width / 2, statistics.mean(values), width, color="tab:blue",
                   yerr=statistics.stdev(values) if len(values) > 1 else None, capsize=3)
            ax.scatter([x - width / 2] * len(values), values, color="black", s=10, zorder=3)
        if mean is not None:
            ax.bar(x + width / 2, mean, width, color="tab:orange", yerr=std, capsize=3)
    ax.bar([], [], color="tab:blue", label="ours (mean +- std, dots: seeds)")
    ax.bar([], [], color="tab:orange", label="published")
    ax.set_xticks(list(xs), [label for label, *_ in entries], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    all_values = [v for _, values, mean, _ in entries for v in values + ([mean] if mean is not None else [])]
    if all_values and min(all_values) > 0:
        low = min(all_values)
        ax.set_ylim(max(0.0, low - 0.25 * (100 - low) - 2), 100)  # differences of a few points stay visible
    ax.set_title(title or "ours vs published")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("outputs"), Path("multirun")])
    parser.add_argument("--prefix", default="", help="only presets whose name starts with this (e.g. t3_)")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    parser.add_argument("--plot", type=Path, help="also draw ours vs published into this PNG")
    args = parser.parse_args(argv)
    runs = {k: v for k, v in find_runs([r for r in args.roots if r.exists()]).items() if k.startswith(args.prefix)}
    if not runs:
        print(f"no finished runs found below {', '.join(map(str, args.roots))}", file=sys.stderr)
        return 1
    rows = table_rows(runs)
    print(markdown(rows), end="")
    if args.csv:
        write_csv(rows, args.csv)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
