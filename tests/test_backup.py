"""`tawasul backup` and `tawasul restore`: a backup taken while a real server takes messages."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

import aiohttp
from test_cli import free_port, run, tawasul_command

from bot.media import MediaStore
from storage.keyring import Keyring

VISITORS = 4


def write_config(folder: Path, port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder / "tawasul.db"}"\n'
        f'[server]\nport = {port}\nmedia_dir = "{folder / "media"}"\n'
        '[organization]\nquiet_hours = "00:00-00:00"\n',
        encoding="utf-8",
    )
    return config


def inbound_ids(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT platform_message_id FROM message WHERE direction = 'in'"
        ).fetchall()
    return {row[0].rsplit(":", 1)[1] for row in rows if row[0]}


async def wait_healthy(
    session: aiohttp.ClientSession, base: str, process: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert process.returncode is None, "tawasul serve ended"
        assert time.monotonic() < deadline, "tawasul serve did not answer"
        await asyncio.sleep(0.2)


async def visitor(base: str, number: int, acknowledged: list[str], stop: asyncio.Event) -> None:
    """One browser on the website chat, posting as fast as the server acknowledges."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{base}/chat") as page:
            assert page.status == 200
        sent = 0
        while not stop.is_set():
            sent += 1
            client_id = f"v{number}m{sent}"
            async with browser.post(
                f"{base}/api/chat/messages", json={"text": f"رسالة {sent}", "id": client_id}
            ) as response:
                if response.status == 202:
                    acknowledged.append(client_id)
                elif response.status == 429:  # a limit on one visitor: slow down, not an error
                    await asyncio.sleep(0.5)
                else:
                    raise AssertionError(f"{response.status}: {await response.text()}")


async def test_a_backup_taken_under_load_restores_every_acknowledged_message(
    tmp_path: Path,
) -> None:
    port = free_port()
    live = tmp_path / "live"
    config = write_config(live, port)
    (live / "media").mkdir()
    (live / "media" / "a1b2.jpg").write_bytes(b"\xff\xd8\xff photo")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    process = await asyncio.create_subprocess_exec(
        *tawasul_command(),
        "serve",
        "--config",
        str(config),
        cwd=live,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    stop = asyncio.Event()
    backup_dir = tmp_path / "backup"
    try:
        async with aiohttp.ClientSession() as probe:
            await wait_healthy(probe, base, process)
        load = [asyncio.create_task(visitor(base, n, acknowledged, stop)) for n in range(VISITORS)]
        while len(acknowledged) < 40:  # the server is busy before the backup starts
            assert not any(task.done() for task in load), [t.exception() for t in load if t.done()]
            await asyncio.sleep(0.05)
        before = list(acknowledged)
        backup = await asyncio.create_subprocess_exec(
            *tawasul_command(),
            "backup",
            str(backup_dir),
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        out, err = await asyncio.wait_for(backup.communicate(), 120)
        during = len(acknowledged) - len(before)
        stop.set()
        await asyncio.gather(*load)
    finally:
        stop.set()
        process.terminate()
        _, server_stderr = await asyncio.wait_for(process.communicate(), 60)
        server_err = server_stderr.decode()
    assert backup.returncode == 0, err.decode()
    assert "backup written to" in out.decode()
    assert during > 0, "the server took no message while the backup ran: not under load"
    assert "Traceback" not in server_err

    manifest = json.loads((backup_dir / "tawasul-backup.json").read_text(encoding="utf-8"))
    assert backup_dir.stat().st_mode & 0o777 == 0o700  # personal data: the owner's only
    assert (backup_dir / "tawasul.db").stat().st_mode & 0o777 == 0o600
    assert manifest["media_files"] == 1

    restored = tmp_path / "restored"
    restored_config = write_config(restored, free_port())
    result = run(restored, "restore", str(backup_dir), "--config", str(restored_config))
    assert result.returncode == 0, result.stderr
    ids = inbound_ids(restored / "tawasul.db")
    missing = [client_id for client_id in before if client_id not in ids]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
    # Whatever was acknowledged after the backup began is in the live database.
    assert set(acknowledged) <= inbound_ids(live / "tawasul.db")
    # Encrypted by the server at its start (it was kept before): the key file came along.
    media = MediaStore(restored / "media", keyring=Keyring.beside(restored / "tawasul.db"))
    assert media.read("media/a1b2.jpg") == b"\xff\xd8\xff photo"
    # The restored database is usable as it is: a command reads it.
    listing = run(restored, "requests", "list", "--config", str(restored_config))
    assert listing.returncode == 0, listing.stderr


def test_restore_refuses_to_overwrite_data_without_force(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=["السلام عليكم"]).returncode == 0
    made = run(tmp_path, "backup", "first")
    assert made.returncode == 0, made.stderr
    again = run(tmp_path, "backup", "first")
    assert again.returncode == 1 and "not an empty folder" in again.stderr
    refused = run(tmp_path, "restore", "first")
    assert refused.returncode == 1
    assert "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert run(tmp_path, "chat", lines=["مرحبا"]).returncode == 0
    forced = run(tmp_path, "restore", "first", "--force")
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(tmp_path / "tawasul.db") as connection:
        texts = [r[0] for r in connection.execute("SELECT text FROM message WHERE direction='in'")]
    keys = Keyring.beside(tmp_path / "tawasul.db")  # restored with the database
    # The later message is gone: the backup is back.
    assert [keys.decrypt(t) for t in texts] == ["السلام عليكم"]


def test_an_unfinished_backup_is_refused(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "tawasul.db.partial").write_bytes(b"")
    result = run(tmp_path, "restore", "half")
    assert result.returncode == 1 and "not a finished Tawasul backup" in result.stderr


def test_postgresql_is_told_to_use_pg_dump(tmp_path: Path) -> None:
    env = {"TAWASUL_DATABASE__URL": "postgresql://postgres@127.0.0.1:5432/nowhere"}
    result = run(tmp_path, "backup", "out", env=env)
    assert result.returncode == 1 and "pg_dump" in result.stderr
    assert not (tmp_path / "out").exists()
