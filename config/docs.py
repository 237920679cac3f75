"""Write docs/CONFIG.md from the schema: every key with its default, allowed values and meaning.

    python -m config.docs            # rewrite docs/CONFIG.md
    python -m config.docs --check    # exit 1 if docs/CONFIG.md is out of date (the tests run this)
"""
from __future__ import annotations

import json
import sys

from .cli import CONFIG_DIR, USER_GROUPS, group_options
from .choices import format_allowed
from .schema import OVERWRITTEN, REJECTED, UNUSED, schema_keys

DOC_PATH = CONFIG_DIR.parent / "docs" / "CONFIG.md"

HEADER = """# Configuration keys

Generated from `config/schema.py` by `python -m config.docs`; do not edit by hand.

Every key can be set on the command line (`python run_experiment.py train.lr=0.001`), in a preset of
`cfg/experiment/`, or in a config group. Markers: **[default exp.]** the default is that of the default
experiment (FlexTCN on MNIST-1D) because the original's default could not run; **[orig: X]** the original
default was X; **[new]** a key the original did not have. Keys marked *accepted, unused* are kept so old
commands still parse; a run prints a note when one of them is set. Keys marked *rejected unless X* allow only X.

`python run_experiment.py <overrides> --cfg job --resolve` prints the values a run will use.
"""


def _value(value) -> str:
    return "`" + (json.dumps(value) if not isinstance(value, str) else (value if value else '""')) + "`"


def no_effect_section() -> list[str]:
    """Markdown lines listing, from the schema's statuses, the keys a run accepts but ignores and the values it
    rejects, so that a user finds them in one place (README.md points here)."""
    unused = [f"`{info.path}`" for info in schema_keys() if info.status in (UNUSED, OVERWRITTEN)]
    conditional = [f"`{info.path}` (no effect on {info.no_effect_on})" for info in schema_keys() if info.no_effect_on]
    rejected = [f"`{info.path}` other than `{json.dumps(info.default)}`" for info in schema_keys()
                if info.status == REJECTED]
    return ["## Keys without effect, and rejected values", "",
            "Accepted without effect (kept so that the original's commands still parse; a run prints a note when "
            "one is set): " + ", ".join(unused) + ".", "",
            "Without effect in some runs: " + ", ".join(conditional) + ".", "",
            "Rejected with an error at start: " + ", ".join(rejected) + ".", ""]


def meaning(info) -> str:
    """The meaning column: the doc, with the status of a key that is not simply used."""
    prefix = {UNUSED: "accepted, unused: ", OVERWRITTEN: "accepted, overwritten: ", REJECTED: "rejected unless "
              f"{json.dumps(info.default)}: "}.get(info.status, "")
    suffix = f" (no effect on {info.no_effect_on})" if info.no_effect_on else ""
    return (prefix + info.doc + suffix).replace("|", "/")


def render() -> str:
    lines = [HEADER, *no_effect_section(), "## Config groups", "", "| group | options |", "|---|---|"]
    for group in USER_GROUPS:
        lines.append(f"| `{group}=` | {', '.join(f'`{o}`' for o in group_options(group))} |")
    section = None
    for info in schema_keys():
        top = info.path.split(".", 1)[0]
        if info.kind == "section" and "." not in info.path:
            section = top
            lines += ["", f"## `{info.path}`", "", info.doc, "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
            continue
        if info.kind == "section":
            continue
        if "." not in info.path and section is not None:
            section = None
            lines += ["", "## Top-level keys", "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
        allowed = info.allowed() if callable(info.allowed) else info.allowed
        cell = format_allowed(allowed) if allowed else ""
        lines.append(f"| `{info.path}` | {_value(info.default)} | {cell} | {meaning(info)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            print(f"{DOC_PATH} is out of date: run python -m config.docs", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
