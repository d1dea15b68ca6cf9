"""Run the demo as the README states it and rewrite README.md's demo block with what it printed.

    python scripts/update_readme_demo.py                 # the default demo + a longer budget (~20 min)
    python scripts/update_readme_demo.py --long-minutes 0   # the default demo only
    python scripts/update_readme_demo.py --reuse         # rebuild the block from the last outputs

The block sits between ``<!-- demo:start -->`` and ``<!-- demo:end -->``; nothing else in the README
is touched. Every number in it is read from the demo's ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- demo:start -->", "<!-- demo:end -->"


def run_demo(arguments: list[str]) -> None:
    command = [sys.executable, "-m", "moa_depthclip.cli.main", "demo", *arguments]
    print("$", " ".join(["moa-depthclip", "demo", *arguments]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=15.0, help="the longer budget (0: skip it)")
    parser.add_argument("--reuse", action="store_true", help="do not run the demo, reuse its last outputs")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()

    from moa_depthclip.demo.report import readme_block

    runs = [("moa-depthclip demo", ["--out", "demo_output"], ROOT / "demo_output")]
    if args.long_minutes > 0:
        minutes = f"{args.long_minutes:g}"
        out = f"demo_output/longer_{minutes}min"
        runs.append(
            (f"moa-depthclip demo --minutes {minutes}", ["--minutes", minutes, "--out", out], ROOT / out)
        )
    if not args.reuse:
        for _, arguments, _ in runs:
            run_demo(arguments)
    measured = []
    for command, _, out in runs:
        metrics = out / "metrics.json"
        if not metrics.is_file():
            parser.error(f"{metrics} does not exist: run without --reuse first")
        measured.append((command, json.loads(metrics.read_text(encoding="utf-8"))))
    text = args.readme.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        parser.error(f"{args.readme} needs exactly one {START} ... {END} block")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    args.readme.write_text(head + START + "\n" + readme_block(measured) + END + tail, encoding="utf-8")
    print(f"rewrote the demo block of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
