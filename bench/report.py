"""Writes ``bench/results.md``: the machine, a table per run, ratios, and the issue's targets."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.runs import Percentiles, RunResult, Window

HEADER = (
    "| window | N | msg/s | ack p50 | ack p95 | ack p99 | reply p50 | reply p95 | reply p99 "
    "| errors | lost | peak MiB | server CPU s |"
)


ANALYSIS = Path(__file__).with_name("analysis.md")


def machine(database: str) -> dict[str, str]:
    """What the numbers were measured on."""
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines()
        if line.startswith("model name")
    ]
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "CPU": f"{models[0] if models else platform.processor()} × {os.cpu_count()}",
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": sys.version.split()[0],
        "SQLite": sqlite3.sqlite_version,
        "database": database,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _ms(value: Percentiles | None) -> tuple[str, str, str]:
    if value is None:
        return ("–", "–", "–")
    return (f"{value.p50:.1f}", f"{value.p95:.1f}", f"{value.p99:.1f}")


def _row(window: Window, run: RunResult, *, headline: bool) -> str:
    cells = [
        f"**best: {window.label}**" if headline else window.label,
        str(window.beneficiaries),
        f"{window.rate:.0f}",
        *_ms(window.ack),
        *_ms(window.reply),
        str(run.errors if headline else window.errors),
        ("n/a" if run.lost is None else str(run.lost)) if headline else "",
        f"{run.peak_mib:.0f}" if headline else "",
        f"{run.server_cpu:.1f}" if headline else "",
    ]
    return "| " + " | ".join(cells) + " |"


def run_section(run: RunResult) -> list[str]:
    """A run's table: its headline row (the best window, whole-run errors and lost), then
    every window it measured with that window's own errors."""
    lines = [
        f"### {run.name} ({run.system})",
        "",
        f"Load: {run.load}. Started in {run.startup:.1f} s; measured {run.wall:.0f} s; "
        f"driver and stand-ins used {run.driver_cpu:.1f} CPU s.",
        "",
        HEADER,
        "|" + "---|" * 13,
        _row(run.best, run, headline=True),
    ]
    if len(run.windows) > 1:
        lines += [_row(window, run, headline=False) for window in run.windows]
    lines.append("")
    lines += [f"- {note}" for note in run.notes]
    if run.problems:
        lines.append(
            "- errors by kind: "
            + ", ".join(f"{what}: {n}" for what, n in sorted(run.problems.items()))
        )
    return [*lines, ""]


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs > 0 else "–"


def _same_load(ours: RunResult, theirs: RunResult) -> tuple[Window, Window] | None:
    """The windows of the largest population both runs measured (closed loop)."""
    mine = {w.beneficiaries: w for w in ours.windows}
    common = [w for w in theirs.windows if w.beneficiaries in mine]
    if not common:
        return None
    top = max(common, key=lambda w: w.beneficiaries)
    return mine[top.beneficiaries], top


def comparison(ours: RunResult, theirs: RunResult) -> list[str]:
    lines = [
        f"- {ours.name} against {theirs.name}: throughput {ours.best.rate:.0f} / "
        f"{theirs.best.rate:.0f} msg/s = {_ratio(ours.best.rate, theirs.best.rate)}"
    ]
    same = _same_load(ours, theirs)
    if same is not None:
        mine, other = same
        for what, a, b in (("ack", mine.ack, other.ack), ("reply", mine.reply, other.reply)):
            if a is not None and b is not None:
                lines.append(
                    f"  - {what} p50/p99 at N={mine.beneficiaries}: {a.p50:.1f}/{a.p99:.1f} ms "
                    f"against {b.p50:.1f}/{b.p99:.1f} ms "
                    f"({_ratio(a.p50, b.p50)}, {_ratio(a.p99, b.p99)} the time)"
                )
    return lines


def _verdict(reached: bool | None) -> str:
    return "not measured" if reached is None else ("reached" if reached else "not reached")


def targets(
    runs: Mapping[str, RunResult], scheduler: Mapping[str, float] | None, sqlite: bool
) -> list[str]:
    """The issue's numbers, each with what was measured and whether it was reached."""
    rows: list[tuple[str, str, bool | None]] = []
    mixed = runs.get("mixed")
    if mixed is not None:
        clean = mixed.best.errors == 0 and mixed.errors == 0 and not mixed.lost
        measured = f"{mixed.best.rate:.0f} msg/s, {mixed.errors} errors, {mixed.lost} lost"
        reached = sqlite and clean and mixed.best.rate >= 1000
        rows.append(("≥ 1,000 msg/s on SQLite, zero errors, nothing lost", measured, reached))
    latency = runs.get("latency")
    if latency is not None and latency.best.ack is not None:
        ack = latency.best.ack.p99
        rows.append(
            (
                "ack p99 < 50 ms at 300 msg/s",
                f"{ack:.1f} ms at {latency.best.rate:.0f} msg/s",
                ack < 50 and latency.best.rate >= 0.95 * 300,
            )
        )
    ceiling, ptb, telegram = runs.get("ceiling"), runs.get("ptb"), runs.get("telegram")
    if mixed is not None:
        half = ceiling is not None and mixed.best.rate >= ceiling.best.rate / 2
        ahead = ptb is not None and telegram is not None and telegram.best.rate > ptb.best.rate
        measured = (
            f"ceiling {_ratio(mixed.best.rate, ceiling.best.rate) if ceiling else '–'}, "
            f"PTB {_ratio(telegram.best.rate, ptb.best.rate) if ptb and telegram else '–'}"
        )
        known = ceiling is not None and ptb is not None and telegram is not None
        rows.append(
            ("≥ half the ceiling and ahead of PTB", measured, half and ahead if known else None)
        )
    held = runs.get("conversations")
    if held is not None:
        rows.append(
            (
                "10,000 active conversations < 300 MB",
                f"{held.peak_mib:.0f} MiB peak with {held.best.beneficiaries}, "
                f"{held.errors} errors",
                held.peak_mib * 1.048576 < 300
                and held.best.beneficiaries >= 10_000
                and held.errors == 0,
            )
        )
    if scheduler:
        create, startup = scheduler.get("create_seconds"), scheduler.get("startup_seconds")
        jobs = int(scheduler.get("jobs", 0))
        reached = (
            create is not None
            and startup is not None
            and jobs >= 100_000
            and create < 10
            and startup < 5
        )
        rows.append(
            (
                "100,000 jobs created < 10 s, start-up < 5 s",
                f"{jobs} jobs: created in {create or 0:.2f} s, start-up {startup or 0:.2f} s",
                reached,
            )
        )
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {what} | {measured} | {_verdict(ok)} |" for what, measured, ok in rows]
    return lines


def write(
    path: Path,
    *,
    database: str,
    command: str,
    runs: Sequence[RunResult],
    scheduler: Mapping[str, float] | None,
    missing: Sequence[str],
    quick: bool,
) -> None:
    """Write the results file."""
    by_name = {run.name: run for run in runs}
    lines = ["# Benchmark results", ""]
    if quick:
        lines += ["**Quick run: small loads for a smoke test; not the figures to quote.**", ""]
    lines += [f"`{command}`", ""]
    lines += [f"- {key}: {value}" for key, value in machine(database).items()]
    lines += [
        "",
        "Latencies in milliseconds: ack = webhook sent → HTTP answer; reply = webhook sent → "
        "first reply at the platform stand-in. msg/s = acknowledged inbound messages per "
        "second in the measured window (after a warm-up). The first row of each table is the "
        "fastest window without errors, with the whole run's errors and lost messages; the "
        "rows after it are every window measured, with their own errors. A window is "
        "sustained when it has no errors and its p99s are under 5 s; stepping stops at the "
        "first that is not, or when throughput grew by less than 10%.",
        "",
        "## Runs",
        "",
    ]
    for run in runs:
        lines += run_section(run)
    if missing:
        lines += ["Not run (their program is missing): " + ", ".join(missing), ""]
    if scheduler:
        lines += ["### scheduler", "", "| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value:.2f} |" for key, value in scheduler.items()]
        lines.append("")
    lines += ["## Ratios", ""]
    pairs = [("mixed", "ceiling"), ("telegram", "ptb")]
    found = [(by_name[a], by_name[b]) for a, b in pairs if a in by_name and b in by_name]
    lines += [line for ours, theirs in found for line in comparison(ours, theirs)] or ["- none"]
    lines += ["", "## Targets (issue 7)", ""]
    lines += targets(by_name, scheduler, sqlite=database.startswith("SQLite"))
    lines += ["", "## Why / profile", ""]
    # The analysis is written by hand from a full run and its profile; it is kept here so
    # that running the benchmark again does not lose it.
    lines += [ANALYSIS.read_text(encoding="utf-8").strip() if ANALYSIS.exists() else "–", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
