"""Start a server as a child process, wait until it answers, watch its memory, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tawasul_command(*args: str) -> list[str]:
    """``tawasul ARGS`` run by this interpreter (no console-script wrapper in between)."""
    return [sys.executable, "-m", "bot.cli", *args]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """A Tawasul config file: ``{"server": {"port": 8080}, ...}`` as TOML tables."""
    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def rss_kib(pid: int) -> tuple[int, int]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), in KiB."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in values:
                    values[name] = int(rest.split()[0])
    except FileNotFoundError:
        pass
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class Server:
    """A server in a child process; ``started_in`` is seconds from spawn to first 200."""

    process: asyncio.subprocess.Process
    url: str
    started_in: float
    log_path: Path
    peak_kib: int = 0
    _cpu_at_mark: float = field(default=0.0)

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory_mib(self) -> tuple[float, float]:
        now, peak = rss_kib(self.pid)
        self.peak_kib = max(self.peak_kib, peak)
        return now / 1024, self.peak_kib / 1024

    def mark_cpu(self) -> None:
        self._cpu_at_mark = cpu_seconds(self.pid)

    def cpu_since_mark(self) -> float:
        return cpu_seconds(self.pid) - self._cpu_at_mark

    async def stop(self, grace: float = 20.0) -> int:
        self.memory_mib()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0


async def start_server(
    command: Sequence[str],
    health_url: str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    wait_up_to: float = 120.0,
) -> Server:
    """Spawn ``command`` in ``cwd`` (output to ``cwd/server.log``) and wait for ``health_url``."""
    log_path = cwd / "server.log"
    started = time.perf_counter()
    with open(log_path, "ab") as log_file:  # noqa: ASYNC230 (before the child exists)
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{tail}")
            try:
                async with http.get(health_url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
                    if answer.status == 200:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.perf_counter() - started > wait_up_to:
                process.kill()
                raise RuntimeError(f"{health_url} did not answer within {wait_up_to:.0f} s")
            await asyncio.sleep(0.02)
    base = health_url.split("/", 3)
    return Server(process, "/".join(base[:3]), time.perf_counter() - started, log_path)
