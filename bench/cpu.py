"""``python -m bench.cpu``: the server's CPU per message on the hot path, and where it goes.

The real ``tawasul serve`` (one process, a fresh SQLite file, the stand-ins of
``bench/standins.py`` as the Twilio and Telegram APIs) takes a few hundred beneficiaries,
half on WhatsApp and half on Telegram, through ``bench.load.script`` (webhook, flow,
stored reply, reply sent by the outbox). The server's CPU is read from ``/proc`` around
the measured conversations (a warm-up of a few conversations first), so the driver's and
the stand-ins' CPU is not in it. ``--profile`` samples the server with py-spy
(``pip install py-spy``; every thread, so SQLite's work in aiosqlite's thread too) and
prints the functions with the largest shares of its samples, cumulative and own; the CPU
figure of a profiled run includes py-spy's pauses. SQLAlchemy runs the ORM's work in a
greenlet, whose stack starts at ``Session.execute``: that share is not counted in the
repository method that awaited it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.load import Driver, closed_loop, stop_tasks
from bench.runs import REPO, TAWASUL, Setup, quiet, running

MIX = "mixed"
_IDLE_WORKER = "_worker (concurrent/futures/thread.py)"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--beneficiaries", type=int, default=300, help="measured (300)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured first (30)")
    parser.add_argument("--think", type=float, default=0.5, help="seconds between turns (0.5)")
    parser.add_argument(
        "--acknowledge",
        choices=("stored", "answered"),
        help="inbound.acknowledge for the server (its default otherwise)",
    )
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    parser.add_argument("--top", type=int, default=25, help="functions listed per table (25)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


async def conversations(driver: Driver, count: int) -> int:
    """``count`` beneficiaries through their whole scripts; the messages acknowledged."""
    before = sum(1 for s in driver.tally.samples if s.status == 200)
    tasks = await closed_loop(driver, MIX, count, recycle=False)
    if tasks:
        await asyncio.wait(tasks)
    await stop_tasks(driver, tasks)
    driver.stopping = False
    return sum(1 for s in driver.tally.samples if s.status == 200) - before


async def measure(options: argparse.Namespace, workdir: Path) -> int:
    setup = Setup(
        workdir=workdir,
        database_url=None,
        quick=True,
        duration=0.0,
        think=options.think,
        steps=(),
        latency_rate=0.0,
        conversations=0,
        conversations_rate=0.0,
        jobs=0,
    )
    extra = {"inbound": {"acknowledge": options.acknowledge}} if options.acknowledge else None
    async with running(setup, "cpu", TAWASUL, extra) as (servers, target, recorder, _url):
        server = servers.members[0]
        async with Driver(target, recorder, think=options.think) as driver:
            await conversations(driver, options.warmup)
            await quiet(recorder, still=0.5)
            spy = await start_spy(server.pid, workdir) if options.profile else None
            server.mark_cpu()
            started = time.perf_counter()
            handled = await conversations(driver, options.beneficiaries)
            await quiet(recorder, still=0.5)  # the last replies' sends counted too
            cpu = server.cpu_since_mark()
            wall = time.perf_counter() - started
            samples = await stop_spy(spy) if spy is not None else None
        tally = driver.tally
        print(
            f"{handled} messages in {wall:.1f} s, server CPU {cpu:.2f} s: "
            f"{1000 * cpu / max(handled, 1):.2f} ms a message" + (" (under py-spy)" if spy else "")
        )
        print(
            f"conversations finished {tally.conversations_finished}, broken "
            f"{tally.conversations_broken}, wrong replies {tally.wrong_replies}"
            + (f", problems {tally.problems}" if tally.problems else "")
        )
        if samples is not None:
            print_profile(samples, options.top)
        return 1 if tally.conversations_broken or tally.wrong_replies else 0


async def start_spy(pid: int, workdir: Path) -> tuple[asyncio.subprocess.Process, Path]:
    if shutil.which("py-spy") is None:
        sys.exit("--profile needs py-spy: pip install py-spy")
    out = workdir / "profile.txt"
    process = await asyncio.create_subprocess_exec(
        *("py-spy", "record", "--pid", str(pid), "--rate", "250", "--threads"),
        *("--format", "raw", "--output", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # attached
    return process, out


async def stop_spy(spy: tuple[asyncio.subprocess.Process, Path]) -> list[tuple[list[str], int]]:
    """Stop py-spy; its samples as (frames outermost first, count)."""
    process, out = spy
    process.send_signal(signal.SIGINT)
    await process.wait()
    samples = []
    for line in out.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        # "function (file:line)": one entry per function, whatever line it was on
        frames = [frame.rsplit(":", 1)[0] + ")" for frame in stack.split(";")[1:]]
        # An idle worker thread waiting for work is not CPU, whatever py-spy thinks.
        if frames and frames[-1] != _IDLE_WORKER:
            samples.append((frames, int(count)))
    return samples


def print_profile(samples: list[tuple[list[str], int]], top: int) -> None:
    total = sum(count for _, count in samples)
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    for frames, count in samples:
        own[frames[-1]] += count
        for frame in set(frames):
            cumulative[frame] += count
    for title, counter in (("cumulative", cumulative), ("own", own)):
        print(f"\ntop {top} by {title} share of {total} samples:")
        for frame, count in counter.most_common(top):
            print(f"{100 * count / total:6.1f}%  {short(frame)}")


def short(frame: str) -> str:
    """The frame with its path from the site-packages or the repository onwards."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", f"{REPO}/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where}" if where else name


def main(argv: Sequence[str] | None = None) -> None:
    options = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tawasul-cpu-"))
    try:
        code = asyncio.run(measure(options, workdir))
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
