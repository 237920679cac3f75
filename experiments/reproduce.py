"""A table of the paper in one command: every preset of the table x seeds as Hydra multiruns, then the table.

    python experiments/reproduce.py t3 --dry-run                       # the 12 Table 3 presets x seeds, and their state
    python experiments/reproduce.py t3 --launcher slurm hydra.launcher.partition=gpu      # submit Table 3 to SLURM
    python experiments/reproduce.py dev --seeds 0,1 device=cpu          # the dev table, minutes on a CPU
    python experiments/reproduce.py t1 --presets t1_smnist_flextcn4 --seeds 0
    python experiments/reproduce.py t6 dataset_params.root=/data      # ImageNet-32 (and t7: ImageNet-k) from /data

Tables: ``t1``, ``t3``, ``t4``, ``t6``, ``t7``, ``t8``, ``t9`` (the presets whose ``paper.table`` is that table),
``ck`` (the CKConv line's sequence sets: Character Trajectories and Speech Commands, CKCNN and FlexTCN-2) and ``dev``
(tiny MNIST-1D runs). Seeds: the authors' (at least 0, 1, 2), or ``--seeds``. Every run goes to
``<out>/<table>/<preset>/seed<k>/`` and runs with ``train.resume=auto``:
launching again resumes a run that was killed or pre-empted from its ``checkpoints/last.pt`` and skips runs
that finished, so a sweep can be re-launched until it is complete. Afterwards ``<out>/<table>/`` holds
``table.md``, ``table.csv`` and ``table.png`` (ours vs published). Extra ``key=value`` arguments pass through
to every run (``device=cpu train.epochs=2``, ``hydra.launcher.partition=gpu``).

Launchers: ``local`` (one run after the other in one process, Hydra's basic launcher), ``submitit_local``
(one process per run on this machine, through hydra-submitit-launcher), ``slurm`` (``cfg/hydra/launcher/
slurm.yaml``: one SLURM job per run, requeued after pre-emption or the time limit).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import make_tables  # noqa: E402  (experiments/ is this script's directory)
from engine.lifecycle import is_finished, read_summary  # noqa: E402  (train.resume=auto skips the same runs)

TABLES = {"t1": "1", "t3": "3", "t4": "4", "t6": "6", "t7": "7", "t8": "8", "t9": "9", "ck": "ck", "dev": "dev"}
LAUNCHERS = {"local": [], "submitit_local": ["hydra/launcher=submitit_local"], "slurm": ["hydra/launcher=slurm"]}
# Each run's directory below the sweep directory (<out>/<table>): <preset>/seed<k>.
RUN_SUBDIR = "hydra.sweep.subdir=${hydra:runtime.choices.experiment}/seed${seed}"


@dataclass(frozen=True)
class Job:
    preset: str
    seed: int
    entry: str      # run_experiment.py | run_crossres.py
    run_dir: Path

    def state(self) -> str:
        """done | partial (<what is there>) | missing."""
        summary = read_summary(self.run_dir)
        if is_finished(summary):
            return "done"
        if summary or (self.run_dir / "checkpoints" / "last.pt").exists() or (self.run_dir / "source").exists():
            status = (summary or {}).get("status", "started")
            epochs = (summary or {}).get("epochs_completed")
            return f"partial ({status}" + (f", {epochs} epochs" if epochs is not None else "") + ")"
        return "missing"


def table_presets(table: str) -> list[str]:
    """Presets whose ``paper.table`` is ``table``, in name order."""
    from config import group_options

    return [p for p in group_options("experiment") if str(make_tables.paper_info(p).get("table", "")) == table]


def entry_point(preset: str) -> str:
    """Cross-resolution presets (source and target resolution set) run with run_crossres.py."""
    from config import compose_config, run_spec

    cross = run_spec(compose_config([f"experiment={preset}"])).cross_res
    return "run_crossres.py" if cross.source_res > 0 and cross.target_res > 0 else "run_experiment.py"


def default_seeds(preset: str) -> list[int]:
    """The seeds the authors ran, and at least three: 0, 1, 2 where they published fewer runs."""
    seeds = list(make_tables.paper_info(preset).get("seeds") or [])
    return seeds if len(seeds) >= 3 else sorted(set(seeds) | {0, 1, 2})[:3]


def plan(presets: list[str], seeds: list[int] | None, sweep_dir: Path) -> list[Job]:
    jobs = []
    for preset in presets:
        entry = entry_point(preset)
        for seed in seeds if seeds is not None else default_seeds(preset):
            jobs.append(Job(preset, int(seed), entry, sweep_dir / preset / f"seed{seed}"))
    return jobs


def commands(jobs: list[Job], sweep_dir: Path, launcher: str, overrides: list[str]) -> list[list[str]]:
    """One Hydra multirun per (entry point, seeds): a multirun sweeps the product of presets and seeds."""
    groups: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    seeds_of: dict[str, list[int]] = {}
    for job in jobs:
        seeds_of.setdefault(job.preset, []).append(job.seed)
    for job in jobs:
        key = (job.entry, tuple(seeds_of[job.preset]))
        if job.preset not in groups.setdefault(key, []):
            groups[key].append(job.preset)
    resume = [] if any(o.startswith("train.resume=") for o in overrides) else ["train.resume=auto"]
    return [[sys.executable, entry, "-m", f"experiment={','.join(presets)}", f"seed={','.join(map(str, seeds))}",
             f"hydra.sweep.dir={sweep_dir}", RUN_SUBDIR, *resume, *LAUNCHERS[launcher], *overrides]
            for (entry, seeds), presets in groups.items()]


def write_table(table: str, presets: list[str], sweep_dir: Path) -> str:
    rows = make_tables.table_rows(make_tables.find_runs([sweep_dir]), presets)
    text = make_tables.markdown(rows)
    (sweep_dir / "table.md").write_text(f"# Table {table}\n\n{text}")
    make_tables.write_csv(rows, sweep_dir / "table.csv")
    make_tables.plot(rows, sweep_dir / "table.png", title=f"Table {table}: ours vs published")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=sorted(TABLES), help="which table to reproduce")
    parser.add_argument("--seeds", help="comma-separated seeds for every preset (default: the seeds the authors ran, "
                                        "at least 0,1,2)")
    parser.add_argument("--presets", help="comma-separated subset of the table's presets")
    parser.add_argument("--launcher", choices=sorted(LAUNCHERS), default="local")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and their state, run nothing")
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        parser.error(f"unrecognised arguments {bad}: extra arguments are key=value overrides")

    table = TABLES[args.table]
    presets = table_presets(table)
    if args.presets:
        wanted = [p.strip() for p in args.presets.split(",")]
        unknown = [p for p in wanted if p not in presets]
        if unknown:
            parser.error(f"--presets {unknown} not in table {args.table}; its presets: {', '.join(presets)}")
        presets = wanted
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        parser.error(f"--seeds={args.seeds!r}: expected comma-separated ints, e.g. 0,1,2")
    sweep_dir = args.out.resolve() / args.table
    jobs = plan(presets, seeds, sweep_dir)

    print(f"table {args.table}: {len(presets)} presets, {len(jobs)} runs in {sweep_dir}")
    for job in jobs:
        reference = make_tables.published(job.preset)
        numbers = ", ".join(f"{k} {make_tables._published_text(v)}" for k, v in reference.items()) or "no published number"
        print(f"  {job.preset:<34} seed {job.seed:<3} {job.state():<32} {numbers}")
    if args.dry_run:
        return 0

    sweep_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for command in commands(jobs, sweep_dir, args.launcher, overrides):
        print("\n$ " + " ".join(command[1:]), flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            failed.append(command[1])
    missing = [job for job in jobs if job.state() != "done"]
    if args.launcher == "slurm" and not failed and missing:
        print(f"\nsubmitted; {len(missing)} runs not done yet. Progress: python experiments/reproduce.py {args.table} "
              f"--dry-run --out {args.out}; the table: run this command again when they are done.")
    print("\n" + write_table(args.table, presets, sweep_dir) + f"\nwrote {sweep_dir / 'table.md'}, table.csv, table.png")
    if missing:
        print(f"{len(missing)} of {len(jobs)} runs are not done: "
              + ", ".join(f"{j.preset} seed {j.seed} ({j.state()})" for j in missing)
              + ". Launch the same command again to resume them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
