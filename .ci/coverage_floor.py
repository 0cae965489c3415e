"""Print branch coverage per package and fail when one is below its floor.

Run after ``coverage combine``. A floor only goes up: raise it when the figures do,
never lower it to let a change through.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

# Branch coverage, in percent. The issue asks for 90 (flows, handlers, storage) and 85
# (bot). The whole CI run of 3 December 2026 (fresh clone of 9510644, SQLite and
# PostgreSQL, `tawasul` subprocesses measured) gave bot 86.6, flows 96.6, handlers 92.3,
# storage 91.0. Each floor is the figure or a measured one less about a point and
# a half of run-to-run slack (timing-dependent branches). Raise them as CI prints more,
# never lower them to let a change through.
FLOORS = {"flows": 95, "handlers": 91, "storage": 90, "bot": 85}


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "coverage.json"
        command = [sys.executable, "-m", "coverage", "json", "-q", "-o", str(out)]
        subprocess.run(command, check=True)
        report = json.loads(out.read_text(encoding="utf-8"))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in report["files"].items():
        package = path.split("/", 1)[0]
        summary = data["summary"]
        total = totals[package]
        total[0] += summary["covered_lines"]
        total[1] += summary["num_statements"]
        total[2] += summary["covered_branches"]
        total[3] += summary["num_branches"]
    failed = []
    print(f"{'package':10} {'lines':>8} {'branches':>9} {'floor':>6}")
    for package in sorted(totals):
        lines, statements, branches, all_branches = totals[package]
        line_share = 100 * lines / statements if statements else 100.0
        branch_share = 100 * branches / all_branches if all_branches else 100.0
        floor = FLOORS.get(package)
        shown = f"{floor}%" if floor is not None else "-"
        print(f"{package:10} {line_share:7.1f}% {branch_share:8.1f}% {shown:>6}")
        if floor is not None and branch_share < floor:
            failed.append(f"{package}: {branch_share:.1f}% of branches, floor {floor}%")
    for line in failed:
        print(f"COVERAGE BELOW FLOOR: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
