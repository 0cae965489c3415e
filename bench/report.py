"""Writes ``bench/results.md``: per database and process count, the machine, a table per
run, ratios and the issues' targets; the failover; then the hand-written sections.

Each ``python -m bench`` command writes its own section (``<!-- bench:KEY -->`` …
``<!-- /bench:KEY -->``: ``sqlite``, ``postgresql-1``, ``postgresql-2``, ``failover``) and
keeps the others already in the file, so the SQLite, PostgreSQL and failover commands
together give one file. The analysis (bench/analysis.md) and the knowledge base's figures
(bench/knowledge.md, from ``python -m bench.knowledge``) are written by hand and copied in
every time.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.runs import PTB_FLUSH_DEFAULT, Percentiles, RunResult, Window

if TYPE_CHECKING:
    from bench.failover import FailoverResult

HEADER = (
    "| window | N | msg/s | ack p50 | ack p95 | ack p99 | reply p50 | reply p95 | reply p99 "
    "| errors | lost | peak MiB | server CPU s |"
)


ANALYSIS = Path(__file__).with_name("analysis.md")
KNOWLEDGE = Path(__file__).with_name("knowledge.md")
BLOCK = re.compile(r"<!-- bench:([\w-]+) -->\n(.*?)<!-- /bench:\1 -->\n?", re.DOTALL)
FAILOVER = "failover"
# Within a window PTB answers from memory; the sentence the issue wants beside its figure.
PTB_MEMORY = (
    "The default baseline keeps conversations in memory between PicklePersistence's "
    f"flushes (every {PTB_FLUSH_DEFAULT:g} s by default) and can lose a minute of them in a "
    "crash; the durable one writes them after every update, as Tawasul stores each "
    "message before it acknowledges the webhook, and its state and reply before the "
    "reply is sent."
)


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
        f"#### {run.name} ({run.system})",
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
    ceiling, telegram = runs.get("ceiling"), runs.get("telegram")
    if mixed is not None and ceiling is not None:
        clean = mixed.errors == 0 and not mixed.lost
        rows.append(
            (
                "≥ 0.5× the ceiling in the same run, zero errors, nothing lost",
                f"{_ratio(mixed.best.rate, ceiling.best.rate)}, {mixed.errors} errors, "
                f"{mixed.lost} lost",
                clean and mixed.best.rate >= ceiling.best.rate / 2,
            )
        )
    for name, what in (("ptb", "default, flushes in the window"), ("ptb_durable", "durable")):
        ptb = runs.get(name)
        if telegram is not None and ptb is not None:
            rows.append(
                (
                    f"ahead of PTB ({what}) on the Telegram load",
                    f"{telegram.best.rate:.0f} against {ptb.best.rate:.0f} msg/s "
                    f"({_ratio(telegram.best.rate, ptb.best.rate)})",
                    telegram.best.rate > ptb.best.rate,
                )
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


def cpu_per_message(runs: Sequence[RunResult]) -> list[str]:
    """Tawasul's CPU per message (its processes, PostgreSQL's backends when measured) and
    what that allows on more cores, if CPU alone were the limit."""
    lines: list[str] = []
    for run in runs:
        if run.system != "tawasul" or run.handled == 0 or run.name == "conversations":
            continue
        server = run.server_cpu * 1000 / run.handled
        driver = run.driver_cpu * 1000 / run.handled
        together = f"{run.processes} processes together" if run.processes > 1 else "one process"
        line = (
            f"- {run.name}: {run.handled} messages; server {server:.2f} ms of CPU a message "
            f"({together})"
        )
        if run.database_cpu is not None:
            database = run.database_cpu * 1000 / run.handled
            both = server + database
            line += (
                f", PostgreSQL {database:.2f} ms, together {both:.2f} ms; driver and stand-ins "
                f"{driver:.2f} ms. CPU alone would allow about "
                f"{4000 / both:.0f} msg/s on 4 cores and {8000 / both:.0f} on 8 "
                "(driver elsewhere, enough processes)"
            )
        else:
            line += f"; driver and stand-ins {driver:.2f} ms"
        lines.append(line + ".")
    return lines


def block_key(database: str, processes: int) -> str:
    """Which section of the results file a command writes."""
    return "sqlite" if database.startswith("SQLite") else f"postgresql-{processes}"


def _order(key: str) -> tuple[int, int, str]:
    if key == "sqlite":
        return (0, 0, key)
    if key.startswith("postgresql-") and key.removeprefix("postgresql-").isdigit():
        return (1, int(key.removeprefix("postgresql-")), key)
    return (3 if key == FAILOVER else 2, 0, key)


def merge_blocks(previous: str, new: Mapping[str, str]) -> dict[str, str]:
    """The sections of ``previous`` (a results file) with ``new`` ones put in their place
    or added, in order: SQLite, PostgreSQL by process count, others, the failover."""
    blocks = {key: body for key, body in BLOCK.findall(previous)}
    blocks.update(new)
    return {key: blocks[key] for key in sorted(blocks, key=_order)}


EARLIER = " (an earlier command)"
KEPT = "_Kept from an earlier command ({date}): not run this time._"


def run_sections(block: str) -> dict[str, str]:
    """A section's runs as written (``#### name (system)`` up to the next heading), by name."""
    start = block.find("### Runs\n")
    if start < 0:
        return {}
    end = block.find("\n### ", start + 1)
    runs = block[start : end if end >= 0 else len(block)]
    parts = re.split(r"(?m)^(?=#### )", runs)
    return {part.split()[1]: part.rstrip() + "\n" for part in parts if part.startswith("#### ")}


def target_rows(block: str) -> dict[str, str]:
    """The rows of a section's targets table, by target."""
    start = block.find("### Targets")
    if start < 0:
        return {}
    rows = [line for line in block[start:].splitlines() if line.startswith("| ")]
    return {row.split("|")[1].strip(): row for row in rows[1:]}


def kept_runs(earlier: str, ran: set[str]) -> list[str]:
    """The runs of ``earlier`` (the same section, written before) not in ``ran``, marked as
    kept with the date they were measured."""
    found = re.search(r"(?m)^- date: (.+)$", earlier)
    date = found.group(1) if found else "date unknown"
    lines: list[str] = []
    for name, section in run_sections(earlier).items():
        if name in ran:
            continue
        if "_Kept from an earlier command" not in section:
            heading, _, rest = section.partition("\n")
            section = f"{heading}\n\n{KEPT.format(date=date)}\n{rest}"
        lines += [section.rstrip(), ""]
    return lines


def _machine_lines(database: str, command: str, quick: bool) -> list[str]:
    lines = []
    if quick:
        lines += ["**Quick run: small loads for a smoke test; not the figures to quote.**", ""]
    lines += [f"`{command}`", ""]
    lines += [f"- {key}: {value}" for key, value in machine(database).items()]
    return [*lines, ""]


def runs_block(
    *,
    database: str,
    processes: int,
    command: str,
    runs: Sequence[RunResult],
    scheduler: Mapping[str, float] | None,
    missing: Sequence[str],
    quick: bool,
    earlier: str = "",
) -> list[str]:
    """One command's section: the machine, each run, ratios, per-message CPU, targets.
    Runs of ``earlier`` (this section as written before) that this command did not run
    are kept, marked, with their targets' rows."""
    by_name = {run.name: run for run in runs}
    ran = set(by_name) | ({"scheduler"} if scheduler else set())
    sqlite = database.startswith("SQLite")
    title = "SQLite" if sqlite else "PostgreSQL"
    count = "one process" if processes == 1 else f"{processes} processes"
    lines = [f"## {title}, {count}", ""]
    lines += _machine_lines(database, command, quick)
    lines += ["### Runs", ""]
    for run in runs:
        lines += run_section(run)
    if missing:
        lines += ["Not run (their program is missing): " + ", ".join(missing), ""]
    if scheduler:
        lines += ["#### scheduler", "", "| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value:.2f} |" for key, value in scheduler.items()]
        lines.append("")
    lines += kept_runs(earlier, ran)
    lines += ["### Ratios", ""]
    pairs = [("mixed", "ceiling"), ("telegram", "ptb"), ("telegram", "ptb_durable")]
    found = [(by_name[a], by_name[b]) for a, b in pairs if a in by_name and b in by_name]
    lines += [line for ours, theirs in found for line in comparison(ours, theirs)] or ["- none"]
    if "ptb" in by_name or "ptb_durable" in by_name:
        lines += ["", PTB_MEMORY]
    per_message = cpu_per_message(runs)
    if per_message:
        lines += [
            "",
            "### CPU a message",
            "",
            "CPU seconds over the whole run (warm-up, every window and the waits between) "
            "divided by the messages acknowledged in it: idle work (outbox passes, the "
            "scheduler) weighs more at low rates, so the fastest run's figure is the one to "
            "read.",
            "",
            *per_message,
        ]
    lines += ["", "### Targets (issues 7 and 19)", ""]
    table = targets(by_name, scheduler, sqlite=sqlite)
    if run_sections(earlier).keys() - ran:  # some runs kept: their targets too
        measured_now = set(target_rows("### Targets\n" + "\n".join(table)))
        for what, row in target_rows(earlier).items():
            target = what.removesuffix(EARLIER)
            if target not in measured_now:
                table.append(row.replace(f"| {what} |", f"| {target}{EARLIER} |", 1))
    lines += table
    return [*lines, ""]


def failover_block(result: FailoverResult, *, command: str, quick: bool) -> list[str]:
    """The failover's rounds, their median and maximum, and the target."""
    lines = ["## Failover (PostgreSQL, two processes)", ""]
    lines += _machine_lines("PostgreSQL", command, quick)
    lines += [
        "Seconds from the scheduler leader's SIGKILL to the other process's `/healthz` "
        "saying `leader`, and to the first follow-up that process ran being accepted by "
        "the platform stand-in; the killed process is started again (as the standby) "
        "before the next round.",
        "",
        "| round | new leader s | next follow-up sent s |",
        "|---|---|---|",
    ]
    lines += [
        f"| {n} | {r.leader_after:.2f} | {r.followup_after:.2f} |"
        for n, r in enumerate(result.rounds, 1)
    ]
    if result.rounds:
        figures = result.figures()
        lines += [
            f"| **median / max** | {figures['new leader (/healthz)'][0]:.2f} / "
            f"{figures['new leader (/healthz)'][1]:.2f} | "
            f"{figures['next follow-up sent'][0]:.2f} / {figures['next follow-up sent'][1]:.2f} |"
        ]
    lines.append("")
    lines += [f"- {note}" for note in result.notes]
    lines.append(f"- beneficiaries reminded more than once: {result.twice}")
    lines.append(f"- measured {result.wall:.0f} s")
    if result.rounds:
        worst = max(r.followup_after for r in result.rounds)
        verdict = "reached" if worst < 10 and result.twice == 0 else "not reached"
        lines += [
            "",
            "| target | measured | |",
            "|---|---|---|",
            f"| the scheduler back within 10 s, no follow-up twice | next follow-up at most "
            f"{worst:.2f} s after the kill, {result.twice} twice | {verdict} |",
        ]
    return [*lines, ""]


def write(
    path: Path,
    *,
    database: str,
    command: str,
    runs: Sequence[RunResult],
    scheduler: Mapping[str, float] | None,
    missing: Sequence[str],
    quick: bool,
    processes: int = 1,
    failover: FailoverResult | None = None,
) -> None:
    """Write this command's sections into the results file, keeping the others in it."""
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    new: dict[str, str] = {}
    if runs or scheduler or missing:
        key = block_key(database, processes)
        block = runs_block(
            database=database,
            processes=processes,
            command=command,
            runs=runs,
            scheduler=scheduler,
            missing=missing,
            quick=quick,
            earlier=dict(BLOCK.findall(previous)).get(key, ""),
        )
        new[key] = "\n".join(block)
    if failover is not None:
        new[FAILOVER] = "\n".join(failover_block(failover, command=command, quick=quick))
    lines = ["# Benchmark results", ""]
    lines += [
        "Latencies in milliseconds: ack = webhook sent → HTTP answer; reply = webhook sent → "
        "first reply at the platform stand-in. msg/s = acknowledged inbound messages per "
        "second in the measured window (after a warm-up). The first row of each table is the "
        "fastest window without errors, with the whole run's errors and lost messages; the "
        "rows after it are every window measured, with their own errors. A window is "
        "sustained when it has no errors and its p99s are under 5 s; stepping stops at the "
        "first that is not, or when throughput grew by less than 10%.",
        "",
        "Each section below is written by its own `python -m bench` command (SQLite; "
        "PostgreSQL with one and with two processes; the failover) and kept when another "
        "command rewrites the file.",
        "",
    ]
    for key, body in merge_blocks(previous, new).items():
        lines += [f"<!-- bench:{key} -->", body.rstrip("\n"), f"<!-- /bench:{key} -->", ""]
    lines += ["## Why / profile", ""]
    # The analysis is written by hand from a full run and its profile, the knowledge
    # base's figures from python -m bench.knowledge; they are kept here so that running
    # the benchmark again does not lose them.
    lines += [ANALYSIS.read_text(encoding="utf-8").strip() if ANALYSIS.exists() else "–", ""]
    if KNOWLEDGE.exists():
        lines += [KNOWLEDGE.read_text(encoding="utf-8").strip(), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
