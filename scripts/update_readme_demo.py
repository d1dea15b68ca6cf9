"""Run the demo as the README states it and rewrite README.md's demo block with what it printed.

    python scripts/update_readme_demo.py                       # `demo` and `demo --minutes 15`
    # what the README holds now (step counts, one thread each, on a shared 2-core machine):
    python scripts/update_readme_demo.py --parallel --budget "--steps 150 --set run.threads=1" \
        --budget "--steps 400 --set run.threads=1" --budget "--steps 800 --set run.threads=1"
    python scripts/update_readme_demo.py --reuse               # rebuild the block from the last outputs

Each ``--budget`` is one demo command (its extra arguments); the first writes ``demo_output/``, the
others ``demo_output/budget_N/``. The block sits between ``<!-- demo:start -->`` and
``<!-- demo:end -->``; nothing else in the README is touched. Every number in it is read from the
demo's ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- demo:start -->", "<!-- demo:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget",
        action="append",
        metavar="ARGS",
        help='extra demo arguments of one run (default: "" and "--minutes 15")',
    )
    parser.add_argument("--parallel", action="store_true", help="run the demos at the same time")
    parser.add_argument("--reuse", action="store_true", help="do not run the demo, reuse its last outputs")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()

    from moa_depthclip.demo.report import readme_block

    budgets = args.budget if args.budget is not None else ["", "--minutes 15"]
    runs = []
    for index, budget in enumerate(budgets):
        out = "demo_output" if index == 0 else f"demo_output/budget_{index}"
        shown = " ".join(["moa-depthclip demo", *shlex.split(budget)])
        runs.append((shown, [*shlex.split(budget), "--out", out], ROOT / out))
    if not args.reuse:
        processes = []
        for shown, arguments, _ in runs:
            print("$", shown, flush=True)
            process = subprocess.Popen(
                [sys.executable, "-m", "moa_depthclip.cli.main", "demo", *arguments], cwd=ROOT
            )
            if args.parallel:
                processes.append(process)
            elif process.wait() != 0:
                parser.error(f"`{shown}` failed")
        if any(process.wait() != 0 for process in processes):
            parser.error("a demo run failed")
    measured = []
    for shown, _, out in runs:
        metrics = out / "metrics.json"
        if not metrics.is_file():
            parser.error(f"{metrics} does not exist: run without --reuse first")
        measured.append((shown, json.loads(metrics.read_text(encoding="utf-8"))))
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
