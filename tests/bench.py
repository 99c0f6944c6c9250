"""Time the phases of a ``make test`` from a fresh clone of HEAD: a benchmark, not a test.

``make bench`` clones the repository's HEAD into a temporary folder and runs there what
``make test`` runs, timing each step as a whole process: the install (virtual environment, torch,
the pinned requirements, the package, MathJax), ruff, mypy and pytest. The pytest session
writes when each of its phases ran (the strict build runs in its own process beside the package
tests, so phases overlap) and every page run (``_build/test-phases.json``, see ``conftest.py``);
this script prints them, then one row per page (a page compared with its record has no second
run). Only the standard library is used, so any Python 3.11 runs it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode not in (0,):
        print(f"`{' '.join(command)}` exited with {done.returncode}", file=sys.stderr)
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kexue-bench-") as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        steps = {
            "install": timed(["make", "--no-print-directory", ".venv/.installed",
                              "_mathjax/mathjax/tex-chtml.js"], clone),
            "ruff": timed([".venv/bin/ruff", "check", "."], clone),
            "mypy": timed([".venv/bin/mypy"], clone),
            "pytest": timed([".venv/bin/python", "-m", "pytest", "-q"], clone),
        }
        log = json.loads((clone / "_build" / "test-phases.json").read_text(encoding="utf-8"))
    start = log["started"]
    print(f"\n{'phase':34s} {'from':>7s} {'to':>7s} {'seconds':>8s}")
    for name, seconds in steps.items():
        print(f"{name:34s} {'':7s} {'':7s} {seconds:8.1f}")
        if name == "pytest":
            for phase, (began, ended) in log["phases"].items():
                print(f"  {phase:32s} {began - start:7.1f} {ended - start:7.1f} "
                      f"{ended - began:8.1f}")
    print(f"{'total':34s} {'':7s} {'':7s} {sum(steps.values()):8.1f}")

    runs = {(r["page"], r["run"]): r for r in log["runs"]}
    pages = sorted({page for page, _ in runs})
    first = [runs[p, "first"] for p in pages if (p, "first") in runs]
    if first:
        wall = [r["wall_seconds"] for r in first]
        cpu = [r["cpu_seconds"] for r in first]
        print(f"\n{len(first)} pages, first runs: wall median {statistics.median(wall):.1f} s, "
              f"max {max(wall):.1f} s, sum {sum(wall):.1f} s; kernel CPU median "
              f"{statistics.median(cpu):.1f} s, sum {sum(cpu):.1f} s")
        print(f"\n{'page':50s} {'wall 1':>7s} {'CPU 1':>7s} {'wall 2':>7s} {'CPU 2':>7s}")
        for page in pages:
            one, two = runs.get((page, "first")), runs.get((page, "second"))
            cells = [f"{r['wall_seconds']:7.1f} {r['cpu_seconds']:7.1f}" if r else f"{'-':>7s} "
                     f"{'-':>7s}" for r in (one, two)]
            print(f"{page:50s} {cells[0]} {cells[1]}")


if __name__ == "__main__":
    main()
