"""The benchmark, small: it drives the real server through whole conversations and loses
nothing. Correctness only; its figures are for ``python -m bench`` (see README)."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.runs import RunResult, Setup, run_one


async def test_a_small_mixed_run_answers_every_message_and_reports_it(tmp_path: Path) -> None:
    setup = Setup(
        workdir=tmp_path,
        database_url=None,
        quick=True,
        duration=3.0,
        think=1.3,
        steps=(6,),
        latency_rate=5.0,
        conversations=10,
        conversations_rate=10.0,
        jobs=50,
        reply_timeout=20.0,
    )
    run = await run_one(setup, "mixed")
    assert isinstance(run, RunResult)
    # Every webhook acknowledged, stored and answered; every reply sent.
    assert (run.errors, run.lost) == (0, 0), (run.problems, run.notes)
    assert run.best.rate > 0 and run.best.ack is not None and run.best.reply is not None
    assert run.peak_mib > 0

    out = tmp_path / "results.md"
    report.write(
        out,
        database="SQLite",
        command="python -m bench",
        runs=[run],
        scheduler=None,
        missing=[],
        quick=True,
    )
    text = out.read_text(encoding="utf-8")
    assert "### mixed (tawasul)" in text and "## Targets" in text
