"""Turn finished runs into the paper's tables: mean +- std over seeds, next to the published number.

Scans run directories (anything with a ``summary.json`` and ``.hydra/overrides.yaml``) below the given
folders, groups them by their ``experiment=<preset>`` override, and prints one Markdown row per preset.
The published numbers come from each preset's ``paper:`` node (``cfg/experiment/``: table, row, published
mean/std per summary.json key, parameter count).

    python experiments/make_tables.py outputs multirun                # all presets found
    python experiments/make_tables.py multirun --prefix t3_ --csv t3.csv

The metric is ``best_test_accuracy`` for ``protocol=paper`` runs (the paper's best-epoch protocol) and
``test_accuracy`` (at the best-validation epoch) for clean runs; cross-resolution runs report source,
out-of-the-box, difference and final accuracy.
"""
from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project runs from its root (config, models, ... are not installed)

CROSSRES_FIELDS = ("source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy")
ACCURACY = "best_test_accuracy"  # the key of single-number rows (the paper's best-epoch protocol)


@functools.lru_cache(maxsize=None)
def paper_info(preset: str) -> dict:
    """The preset's ``paper:`` node as a plain dict ({} for a run without a preset or an unknown preset)."""
    from omegaconf import OmegaConf

    from config import compose_config, group_options

    if preset not in group_options("experiment"):
        return {}
    return OmegaConf.to_container(compose_config([f"experiment={preset}"]).paper, resolve=True)


def published_numbers(preset: str) -> list[float]:
    """Published means of the preset, in the order of CROSSRES_FIELDS (cross-resolution) or the one accuracy."""
    published = paper_info(preset).get("published", {})
    keys = CROSSRES_FIELDS if any(k in published for k in CROSSRES_FIELDS) else (ACCURACY,)
    return [published[k]["mean"] for k in keys if k in published]


def find_runs(roots: list[Path]) -> dict[str, list[dict]]:
    """``{preset: [summary, ...]}`` for every finished run below ``roots``."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for root in roots:
        for summary_path in sorted(root.rglob("summary.json")):
            overrides_path = summary_path.parent / ".hydra" / "overrides.yaml"
            if not overrides_path.exists():
                continue
            overrides = yaml.safe_load(overrides_path.read_text()) or []
            preset = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "(default)")
            summary = json.loads(summary_path.read_text())
            if summary.get("status") in ("completed", "early_stopped", "evaluated"):
                runs[preset].append(summary)
    return runs


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"


def table_rows(runs: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for preset in sorted(runs):
        summaries = runs[preset]
        paper = published_numbers(preset)
        seeds = sorted({s.get("seed") for s in summaries if s.get("seed") is not None})
        params = summaries[0].get("no_params")
        row = {"preset": preset, "runs": len(summaries), "seeds": ",".join(map(str, seeds)),
               "params": f"{params:,}" if isinstance(params, int) else "-"}
        if all(field in summaries[0] for field in CROSSRES_FIELDS):
            for i, field in enumerate(CROSSRES_FIELDS):
                row[field] = mean_std([100 * s[field] for s in summaries if field in s])
                row[f"paper_{field}"] = paper[i] if i < len(paper) else "-"
        else:
            metric = "best_test_accuracy" if summaries[0].get("protocol") == "paper" else "test_accuracy"
            values = [100 * s[metric] for s in summaries if s.get(metric) is not None]
            row.update(metric=metric, ours=mean_std(values), paper=paper[0] if paper else "-")
            if values and paper:
                row["diff"] = f"{statistics.mean(values) - paper[0]:+.2f}"
        rows.append(row)
    return rows


def print_markdown(rows: list[dict]) -> None:
    plain = [r for r in rows if "ours" in r]
    if plain:
        print("| preset | runs (seeds) | params | ours (%) | paper (%) | diff |\n|---|---|---|---|---|---|")
        for r in plain:
            print(f"| {r['preset']} | {r['runs']} ({r['seeds']}) | {r['params']} | {r['ours']} | {r['paper']} | "
                  f"{r.get('diff', '-')} |")
    cross = [r for r in rows if "ours" not in r]
    if cross:
        print("\n| preset | runs | " + " | ".join(f"{f} (paper)" for f in CROSSRES_FIELDS) + " |")
        print("|---|---|" + "---|" * len(CROSSRES_FIELDS))
        for r in cross:
            cells = " | ".join(f"{r[f]} ({r[f'paper_{f}']})" for f in CROSSRES_FIELDS)
            print(f"| {r['preset']} | {r['runs']} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("outputs"), Path("multirun")])
    parser.add_argument("--prefix", default="", help="only presets whose name starts with this (e.g. t3_)")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    runs = {k: v for k, v in find_runs([r for r in args.roots if r.exists()]).items() if k.startswith(args.prefix)}
    if not runs:
        print(f"no finished runs found below {', '.join(map(str, args.roots))}", file=sys.stderr)
        return 1
    rows = table_rows(runs)
    print_markdown(rows)
    if args.csv:
        fields = sorted({key for row in rows for key in row})
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
