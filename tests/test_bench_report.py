"""The benchmark's results file: each command's section kept when another command writes,
the hand-written sections copied in, the figures derived from a run. No timing here."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.failover import FailoverResult, Round
from bench.runs import Percentiles, RunResult, Setup, Window, ptb_notes


def _run(name: str, system: str, rate: float, **extra: object) -> RunResult:
    window = Window("N=10", 10, rate, Percentiles(1, 2, 3), Percentiles(4, 5, 6), 0, 100)
    fields: dict[str, object] = {
        "name": name,
        "system": system,
        "load": "closed loop",
        "best": window,
        "windows": [window],
        "errors": 0,
        "lost": 0,
        "peak_mib": 100.0,
        "server_cpu": 2.0,
        "driver_cpu": 0.5,
        "wall": 30.0,
        "startup": 1.0,
    }
    fields.update(extra)
    return RunResult(**fields)  # type: ignore[arg-type]


def _write(path: Path, database: str, runs: list[RunResult], **extra: object) -> str:
    report.write(
        path,
        database=database,
        command="python -m bench",
        runs=runs,
        scheduler=None,
        missing=[],
        quick=False,
        **extra,  # type: ignore[arg-type]
    )
    return path.read_text(encoding="utf-8")


def _setup(tmp_path: Path, duration: float) -> Setup:
    return Setup(tmp_path, None, False, duration, 1.5, (10,), 10.0, 10, 10.0, 10)


def test_each_command_keeps_the_others_sections_and_the_hand_written_ones(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results.md"
    _write(out, "SQLite (a new file per run)", [_run("mixed", "tawasul", 150)])
    _write(out, "PostgreSQL", [_run("mixed", "tawasul", 222)], processes=2)
    failover = FailoverResult([Round(2.0, 2.5), Round(1.5, 3.5), Round(2.5, 2.75)])
    _write(out, "PostgreSQL", [], failover=failover)
    text = _write(out, "PostgreSQL", [_run("mixed", "tawasul", 111)], processes=1)

    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:4] == [
        "## SQLite, one process",
        "## PostgreSQL, one process",
        "## PostgreSQL, 2 processes",
        "## Failover (PostgreSQL, two processes)",
    ]
    assert "| **best: N=10** | 10 | 150 |" in text and "| **best: N=10** | 10 | 222 |" in text
    # The knowledge base's figures and the analysis are copied in every time, once.
    assert text.count("## Knowledge base (issue 13)") == 1
    assert text.count("## Why / profile") == 1
    assert report.KNOWLEDGE.read_text(encoding="utf-8").strip() in text

    # Written again, a section replaces its earlier self.
    again = _write(out, "SQLite (a new file per run)", [_run("mixed", "tawasul", 160)])
    assert again.count("## SQLite, one process") == 1
    assert "| 10 | 160 |" in again and "| 10 | 150 |" not in again
    assert "| 10 | 222 |" in again and "| **median / max** |" in again


def test_failover_median_and_maximum() -> None:
    result = FailoverResult([Round(2.0, 2.5), Round(1.5, 3.5), Round(2.5, 2.75)])
    assert result.figures() == {
        "new leader (/healthz)": (2.0, 2.5),
        "next follow-up sent": (2.75, 3.5),
    }
    lines = report.failover_block(result, command="python -m bench", quick=False)
    assert "| **median / max** | 2.00 / 2.50 | 2.75 / 3.50 |" in lines
    assert any(line.endswith("| reached |") for line in lines)
    slow = FailoverResult([Round(9.0, 12.0)], twice=0)
    lines = report.failover_block(slow, command="python -m bench", quick=False)
    assert any(line.endswith("| not reached |") for line in lines)


def test_cpu_a_message_from_the_servers_and_postgresql() -> None:
    run = _run("mixed", "tawasul", 150, handled=1000, processes=2, database_cpu=1.0)
    (line,) = report.cpu_per_message([run, _run("ptb", "ptb", 70, handled=500)])
    assert "server 2.00 ms of CPU a message (2 processes together)" in line
    assert "PostgreSQL 1.00 ms, together 3.00 ms" in line
    assert "about 1333 msg/s on 4 cores and 2667 on 8" in line
    # SQLite: no database process to measure.
    (line,) = report.cpu_per_message([_run("mixed", "tawasul", 150, handled=4000)])
    assert "0.50 ms of CPU a message (one process)" in line and "PostgreSQL" not in line


def test_ptb_flushes_at_least_twice_a_window_and_says_so(tmp_path: Path) -> None:
    short, long = _setup(tmp_path, 10.0), _setup(tmp_path, 300.0)
    assert short.ptb_flush == 4.0 and long.ptb_flush == 60.0
    assert "every 4 s instead of PTB's default 60 s" in ptb_notes(short, durable=False)[0]
    assert "(PTB's default)" in ptb_notes(long, durable=False)[0]
    assert "after every update" in ptb_notes(short, durable=True)[0]


def test_ptb_results_say_the_default_keeps_conversations_in_memory(tmp_path: Path) -> None:
    runs = [_run("telegram", "tawasul", 130), _run("ptb", "ptb", 70, lost=None)]
    text = _write(tmp_path / "results.md", "SQLite (a new file per run)", runs)
    assert report.PTB_MEMORY in text
    assert "| ahead of PTB (default, flushes in the window) on the Telegram load |" in text


def test_runs_not_run_again_are_kept_with_their_date_and_targets(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    held = _run("conversations", "tawasul", 99, peak_mib=120.0)
    held.best = Window("10000 conversations", 10_000, 99, None, None, 0, 20_000)
    _write(out, "SQLite (a new file per run)", [_run("mixed", "tawasul", 150), held])
    text = _write(out, "SQLite (a new file per run)", [_run("mixed", "tawasul", 170)])
    assert "| 10 | 170 |" in text and "| 10 | 150 |" not in text
    assert text.count("#### conversations (tawasul)") == 1
    assert "_Kept from an earlier command (" in text
    assert "| 10,000 active conversations < 300 MB (an earlier command) |" in text
    assert text.count("≥ 1,000 msg/s on SQLite") == 1  # measured again: the new row only
    # Kept again: one mark, the first date.
    again = _write(out, "SQLite (a new file per run)", [_run("mixed", "tawasul", 180)])
    assert again.count("_Kept from an earlier command") == 1
    assert again.count("10,000 active conversations < 300 MB") == 1
    # Another section's runs are not taken.
    other = _write(out, "PostgreSQL", [_run("mixed", "tawasul", 90)], processes=2)
    postgresql = other.split("<!-- bench:postgresql-2 -->")[1]
    assert "conversations" not in postgresql.split("<!-- /bench:postgresql-2 -->")[0]
