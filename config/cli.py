"""Command-line checks that run before Hydra composes, and the exits of the entry points.

Hydra's own message for an unknown key suggests ``+key=...`` rather than the key that was meant, and its
message for an unknown group option or a comma in a single run is a composition error; the entry points call
:func:`check_overrides_or_exit` on ``sys.argv[1:]`` first, which names the closest valid keys and options.
"""
from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

from .errors import ConfigError
from .schema import schema_keys

CONFIG_DIR: Path = Path(__file__).resolve().parent.parent / "cfg"
CONFIG_NAME = "config"
# Config groups that users select with group=option (hydra/... groups are Hydra's own).
USER_GROUPS = ("experiment", "model", "optim")


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files below ``cfg/<group>/`` (``dev/mnist1d_quick``, ...)."""
    root = CONFIG_DIR / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _kinds() -> dict[str, str]:
    return {info.path: info.kind for info in schema_keys()}


def _is_known_key(path: str, kinds: dict[str, str]) -> bool:
    if path in kinds:
        return True
    head, _, tail = path.rpartition(".")
    if kinds.get(head) == "list" and tail.isdigit():  # "summary.0": an index into a list-valued key
        return True
    return kinds.get(head) == "dict"  # "paper.published.<metric>": a key of a dict-valued key


def suggest_keys(key: str, n: int = 3) -> list[str]:
    """Closest valid keys (or config groups) for a misspelt ``key``, best first; may be empty.

    A candidate scores the better of two similarities: of the whole dotted path (catches typos,
    ``net.no_hiden``), and of the last component alone (catches a key given without its section,
    ``no_hidden``, or in the wrong one, ``train.horizon``). Only candidates close to the best are
    returned, so an obvious fix is not buried among loose matches.
    """
    candidates = [info.path for info in schema_keys()] + list(USER_GROUPS)
    last = key.rsplit(".", 1)[-1]
    scored = []
    for path in candidates:
        whole = difflib.SequenceMatcher(None, key, path).ratio()
        leaf = difflib.SequenceMatcher(None, last, path.rsplit(".", 1)[-1]).ratio()
        scored.append((max(whole, 0.98 * leaf), path))
    scored.sort(key=lambda item: (-item[0], item[1]))
    if not scored or scored[0][0] < 0.7:
        return []
    floor = max(0.7, scored[0][0] - 0.08)
    return [path for score, path in scored[:n] if score >= floor]


def unknown_key_message(key: str, override: Optional[str] = None) -> str:
    where = f" (in override '{override}')" if override and override != key else ""
    msg = f"Unknown config key '{key}'{where}."
    suggestions = suggest_keys(key)
    msg += (" Did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?") if suggestions else " No similar key exists."
    return msg + " Every key is listed, with its meaning, in docs/CONFIG.md."


def _unknown_option_message(group: str, option: str, arg: str) -> str:
    options = group_options(group)
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return (f"{group}={option!r} (in override '{arg}') is invalid: no such option in config group '{group}'.{hint} "
            f"Allowed values: {', '.join(options)}.")


def _top_level_comma(value: str) -> bool:
    """A comma outside brackets and quotes: Hydra reads ``a,b`` as a sweep of two values."""
    depth, quote = 0, None
    for char in value:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def check_overrides(overrides: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for an override that names an unknown key or group option, or that Hydra
    would read as a sweep in a single run (``cross_res.resize=16,16``).

    ``overrides`` are raw arguments as on the command line (``sys.argv[1:]``). Skipped: flags (``-m``,
    ``--cfg``, ...), arguments without ``=``, ``hydra.*`` keys and ``hydra/...`` groups, and Hydra's
    add/force-add/delete forms (``+key``, ``++key``, ``~key``), whose semantics Hydra itself checks.
    """
    overrides = list(overrides)
    multirun = any(arg in ("-m", "--multirun") for arg in overrides)
    kinds = _kinds()
    problems: list[str] = []
    for arg in overrides:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = (part.strip() for part in arg.split("=", 1))
        if not key or key[0] in "+~":
            continue
        key = key.split("@", 1)[0]  # "group@package=option" form
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        group = key.split("/", 1)[0]
        if group in USER_GROUPS:
            options = [v.strip() for v in value.split(",")] if multirun else [value]
            for option in options:
                if option not in ("null", "") and option not in group_options(key):
                    problems.append(_unknown_option_message(key, option, arg))
            continue
        if "/" in key:
            problems.append(f"Unknown config group '{key}' (in override '{arg}'). "
                            f"Config groups: {', '.join(USER_GROUPS)}, hydra/launcher.")
        elif not _is_known_key(key, kinds):
            problems.append(unknown_key_message(key, arg))
        elif not multirun and _top_level_comma(value):
            problems.append(f"{key}={value!r} (in override '{arg}') is invalid here: an unquoted comma makes Hydra "
                            f"sweep over the values, which needs -m. Quote the value for one run: "
                            f"'{key}=\"{value}\"'")
    if problems:
        raise ConfigError("\n".join(problems))


def explicit_keys(overrides: Sequence[str]) -> list[str]:
    """The config keys a command line sets (``key=value``, parsed by Hydra's own parser); group choices and
    ``hydra.*`` are left out. The engine lets these win over a checkpoint's stored config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if override.is_delete() or key.startswith("hydra") or key in USER_GROUPS or "/" in key:
            continue
        keys.append(key)
    return keys


def exit_with(error: ConfigError, status: int = 2) -> None:
    print(f"Config error: {error}", file=sys.stderr)
    sys.exit(status)


def check_overrides_or_exit(argv: Optional[Sequence[str]] = None) -> None:
    """Entry-point helper: :func:`check_overrides` on ``sys.argv[1:]``; on error print the message to stderr
    and exit with status 2 (before Hydra prints its less helpful one)."""
    try:
        check_overrides(sys.argv[1:] if argv is None else argv)
    except ConfigError as error:
        exit_with(error)


def read_or_exit(cfg: Any, *, entry: str, explicit: Optional[Sequence[str]] = None):
    """Entry-point helper, inside ``@hydra.main``: the composed config read into a :class:`config.SpecReader`
    (validated once, with the keys the command line sets explicitly: ``explicit``, by default those of the running
    Hydra app's command line); on a bad value print every problem and exit with status 2, before any work."""
    from .read import SpecReader

    if explicit is None:
        from hydra.core.hydra_config import HydraConfig

        explicit = explicit_keys(HydraConfig.get().overrides.task)
    try:
        return SpecReader(cfg, entry=entry, explicit=explicit)
    except ConfigError as error:
        exit_with(error)


def run_entry(cfg: Any, entry: str) -> dict:
    """The body of every entry point's ``@hydra.main`` function: read the config once (a bad value exits 2,
    :func:`read_or_exit`), then run the engine's protocol of ``entry`` in Hydra's run directory; known user errors
    (missing data, a bad checkpoint, a diverged run) print one ``error:`` line and exit 1."""
    from engine.errors import report_errors

    reader = read_or_exit(cfg, entry=entry)
    if entry == "run_crossres":
        from engine.crossres import run
    elif entry == "run_profiler":
        from engine.profiler import run
    else:
        from engine.experiment import run
    with report_errors():
        return run(reader, hydra_output_dir())


def hydra_output_dir() -> Path:
    """The run directory Hydra made for this run (``hydra.run.dir``)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def prepare_argv() -> None:
    """Entry-point helper, before ``@hydra.main`` runs: a misspelt key or group option exits 2 naming the closest
    valid ones (:func:`check_overrides`), and under torchrun the ranks other than 0 write no Hydra outputs."""
    check_overrides_or_exit(sys.argv[1:])
    sys.argv[1:] = hydra_outputs_of_this_rank(sys.argv[1:])


def compose_config(overrides: Sequence[str] = (), *, return_hydra_config: bool = False):
    """Compose ``cfg/config.yaml`` with Hydra overrides, outside of ``@hydra.main`` (tests, notebooks, tools).

    Runs :func:`check_overrides` first, so a misspelt key raises :class:`ConfigError` with a suggestion;
    wrong types raise Hydra's ``ConfigCompositionException`` naming the key. Does not validate values.
    Not for use inside a running ``@hydra.main`` app (Hydra allows one initialisation at a time).
    """
    from hydra import compose, initialize_config_dir

    check_overrides(overrides)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra_config)


def hydra_outputs_of_this_rank(argv: list[str]) -> list[str]:
    """Under torchrun every process runs Hydra, which creates a run directory (a second, empty one when
    the clock ticks between the processes' starts) and writes .hydra/ there. Only rank 0 does; the other
    ranks write nothing and take rank 0's run directory from the engine (engine.lifecycle)."""
    if int(os.environ.get("RANK", "0")) == 0:
        return argv
    return [*argv, "hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled"]
