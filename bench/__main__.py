"""``python -m bench``: every run, each on its own server and fresh database, then the report."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.failover import FailoverResult
from bench.runs import DEFAULT_RUNS, REPO, RUNS, RunResult, Setup, run_one

DESCRIPTION = """\
Benchmark Tawasul's real server (`tawasul serve`) under many concurrent beneficiaries,
beside a bare aiohttp ceiling and a python-telegram-bot ConversationHandler baseline.

Runs (each with its own server and a fresh database):
  ceiling        bench/ceiling.py, closed loop stepped up, half WhatsApp half Telegram
                 (acks only: it sends no replies)
  mixed          Tawasul, the same load: its maximum sustained throughput
  latency        Tawasul, open loop at a fixed rate (300 msg/s)
  telegram       Tawasul, closed loop stepped up, Telegram only, in windows of at least
                 150 s (two of PicklePersistence's flushes at PTB's default 60 s)
  ptb            bench/ptb_baseline.py, the same Telegram load and windows;
                 PicklePersistence flushed every 60 s (more often with --quick)
  ptb_durable    the same, its pickle written after every update (Tawasul's durability)
  conversations  10,000 beneficiaries left mid-intake: the server's peak memory
  scheduler      bench/scheduler_scale.py: 100,000 pending follow-ups
  failover       PostgreSQL only, not run unless named with --only: two processes,
                 follow-ups due all the time, the scheduler's leader killed with SIGKILL
                 (5 rounds, 2 with --quick): seconds to the next follow-up sent

SQLite (a new file per run) unless --database-url is given. With a PostgreSQL URL the
bench DROPS THE WHOLE `public` SCHEMA (every table in it) before each run: give it a
database of its own. --processes N (PostgreSQL only) puts N `tawasul serve` processes
(and N ceilings) behind the driver, which sends to each in turn.

Each command writes its own section of the results file (SQLite; PostgreSQL with N
processes; the failover) and keeps the others.
"""


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small loads, about two minutes in all (a smoke test)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="postgresql://… to run on PostgreSQL; its public schema is dropped before each run",
    )
    parser.add_argument("--only", choices=RUNS, action="append", help="run only this (repeatable)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="tawasul serve processes on the one PostgreSQL database (with --database-url)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results.md", help="the results file"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds measured per window, after a warm-up (default 20; 4 with --quick)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=1.5,
        help="seconds a beneficiary waits after a reply, ±20%% (over 1.25: Telegram allows "
        "one message a second per chat; default 1.5)",
    )
    parser.add_argument(
        "--steps",
        metavar="N,N,…",
        help="the closed loops' numbers of beneficiaries, stepped up in this order "
        "(default 50,100,200,… up to 6400; 10,20 with --quick)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (server logs, databases)"
    )
    args = parser.parse_args(argv)
    if args.think * 0.8 <= 1.0:
        parser.error("--think must be over 1.25 s: Telegram sends one message a second per chat")
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql")):
        parser.error("--database-url must be a postgresql:// URL (SQLite is the default)")
    if args.steps is not None:
        try:
            args.steps = tuple(int(n) for n in args.steps.split(","))
        except ValueError:
            parser.error("--steps must be numbers separated by commas: 50,100,200")
        if not args.steps or min(args.steps) < 1:
            parser.error("--steps must be numbers of beneficiaries, each at least 1")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.processes > 1 and not args.database_url:
        parser.error("--processes over 1 needs PostgreSQL (--database-url): SQLite is one process")
    if "failover" in (args.only or []) and not args.database_url:
        parser.error("the failover run needs PostgreSQL (--database-url)")
    return args


def make_setup(args: argparse.Namespace, workdir: Path) -> Setup:
    if args.quick:
        return Setup(
            workdir=workdir,
            database_url=args.database_url,
            quick=True,
            duration=args.duration or 4.0,
            think=args.think,
            steps=args.steps or (10, 20),
            latency_rate=20.0,
            conversations=100,
            conversations_rate=50.0,
            jobs=2_000,
            reply_timeout=10.0,
            processes=args.processes,
            failover_rounds=2,
        )
    return Setup(
        workdir=workdir,
        database_url=args.database_url,
        quick=False,
        duration=args.duration or 20.0,
        think=args.think,
        steps=args.steps or (50, 100, 200, 400, 800, 1200, 1600, 2400, 3200, 4800, 6400),
        latency_rate=300.0,
        conversations=10_000,
        conversations_rate=100.0,
        jobs=100_000,
        processes=args.processes,
    )


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    names = args.only or list(DEFAULT_RUNS)
    results: list[RunResult] = []
    scheduler: dict[str, float] | None = None
    failover: FailoverResult | None = None
    missing: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="tawasul-bench-"))
    setup = make_setup(args, workdir)
    database = "PostgreSQL" if args.database_url else "SQLite (a new file per run)"
    finished = False
    try:
        for name in names:
            started = time.perf_counter()
            print(f"bench: {name}…", file=sys.stderr, flush=True)
            outcome = await run_one(setup, name)
            if outcome is None:
                missing.append(name)
                print(f"bench: {name} skipped (its program is missing)", file=sys.stderr)
                continue
            if isinstance(outcome, RunResult):
                results.append(outcome)
                summary = f"{outcome.best.rate:.0f} msg/s, {outcome.errors} errors"
            elif isinstance(outcome, FailoverResult):
                failover = outcome
                summary = ", ".join(
                    f"{what} median {median:.2f} s, max {most:.2f} s"
                    for what, (median, most) in outcome.figures().items()
                )
            else:
                scheduler = outcome
                summary = ", ".join(f"{k} {v:.2f}" for k, v in outcome.items())
            took = time.perf_counter() - started
            print(f"bench: {name} done in {took:.0f} s: {summary}", file=sys.stderr, flush=True)
        finished = True
    finally:
        if args.keep or not finished:
            print(f"bench: work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    given = list(argv if argv is not None else sys.argv[1:])
    # The database URL may carry a password: the results file only says which database.
    shown = ["postgresql://…" if arg == args.database_url else arg for arg in given]
    command = shlex.join(["python", "-m", "bench", *shown])
    report.write(
        args.out,
        database=database,
        command=command,
        runs=results,
        scheduler=scheduler,
        missing=missing,
        quick=args.quick,
        processes=args.processes,
        failover=failover,
    )
    print(f"bench: results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
