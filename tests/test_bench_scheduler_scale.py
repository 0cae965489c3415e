"""The scheduler scale run, small: the follow-ups it plans all have their jobs after a start.

Correctness only; its timings are benchmark figures (``python -m bench.scheduler_scale``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_small_scale_run_keeps_every_job_and_runs_none_early(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scheduler_scale",
            "--jobs",
            "300",
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["jobs"] == 300
    assert figures["jobs_in_store_after_start"] == 300
    assert figures["followups_pending_after_start"] == 300
    assert figures["jobs_matching_pending"] == 300
    assert (figures["due_during_run"], figures["messages_sent"]) == (0, 0)
    assert figures["create_seconds"] > 0 and figures["startup_seconds"] > 0
