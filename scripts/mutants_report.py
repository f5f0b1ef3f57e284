"""Killed / survived / timeout per module and per file from a finished ``mutmut run``.

mutmut prints one total and lists mutants one by one; the team reads mutation results per module, so
this sums mutmut's own result files (``mutants/**/*.py.meta``) with mutmut's own exit-code table.
Usage: ``python scripts/mutants_report.py [--survivors]`` from the repository root (``nox -s mutants``
runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

COLUMNS = ("killed", "survived", "timeout", "no tests", "suspicious", "not checked")


def _row(name: str, counts: Counter[str]) -> str:
    total = sum(counts.values())
    checked = counts["killed"] + counts["survived"] + counts["timeout"]
    score = f"{(counts['killed'] + counts['timeout']) / checked * 100:.1f} %" if checked else "-"
    cells = " | ".join(str(counts[column]) for column in COLUMNS)
    return f"| {name} | {total} | {cells} | {score} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("mutants/src/llmfiles"))
    parser.add_argument("--survivors", action="store_true", help="also list every surviving mutant")
    args = parser.parse_args(argv)
    metas = sorted(args.root.rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {str(args.root)!r}; run `mutmut run` first", file=sys.stderr)
        return 2
    per_file: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        name = str(meta.relative_to(args.root)).removesuffix(".meta")
        counts = per_file.setdefault(name, Counter())
        for key, code in codes.items():
            status = status_by_exit_code[code]
            counts[status] += 1
            if status == "survived":
                survivors.append(key)
    header = "| module | mutants | " + " | ".join(COLUMNS) + " | killed + timeout of checked |"
    rule = "|" + "---|" * (len(COLUMNS) + 3)
    modules: dict[str, Counter[str]] = {}
    for name, counts in per_file.items():
        modules.setdefault(name.split("/", 1)[0], Counter()).update(counts)
    print(header, rule, *(_row(f"`llmfiles.{m}`", c) for m, c in sorted(modules.items())), sep="\n")
    print()
    print(header.replace("module", "file", 1), rule, sep="\n")
    print(*(_row(f"`{n}`", c) for n, c in sorted(per_file.items()) if sum(c.values())), sep="\n")
    if args.survivors:
        print()
        print(*(f"- `{key}`" for key in sorted(survivors)), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
