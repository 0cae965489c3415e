"""Several processes on one PostgreSQL database: one scheduler's leader, elected with an
advisory lock on a connection of its own, replaced within seconds when it dies."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from channels import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BENEFICIARY,
    CHARITY,
    FAST_SENDER,
    INTAKE_WHATSAPP,
    PUBLIC_URL,
    eventually,
    make_settings,
    settled,
)
from conftest import POSTGRESQL_KEY, POSTGRESQL_URL_ENV, open_database
from fakes.twilio_api import FakeTwilio
from served import served
from sqlalchemy import select
from sqlmodel import col

from bench.proc import Server, free_port, start_server, tawasul_command, write_config
from bot import outbox
from bot.config import Settings
from bot.engine import ConversationEngine
from bot.outbox import OutboxSender
from bot.server import Tawasul
from flows.types import (
    Address,
    FlowSettings,
    InboundMessage,
    OutboundMessage,
    Transition,
    Turn,
)
from handlers.twilio import TwilioChannel
from storage.cluster import Announcements, ClusterLink, chunks
from storage.db import Database
from storage.models import FOLLOWUP_CANCELLED, FOLLOWUP_PENDING, Message
from storage.repositories import (
    ConversationRepository,
    FollowUpRepository,
    IdentityRepository,
    MessageRepository,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get(POSTGRESQL_URL_ENV), reason=f"set {POSTGRESQL_URL_ENV}: PostgreSQL only"
)


@pytest.fixture
async def postgresql(tmp_path: Path) -> Database:
    database = await open_database("postgresql", tmp_path)
    yield database
    await database.dispose()


class Member:
    """A ClusterLink and what it was told."""

    def __init__(self, database: Database) -> None:
        self.events: list[str] = []
        self.heard: list[str] = []
        self.link = ClusterLink(
            database, on_elected=self._elected, on_deposed=self._deposed, retry_seconds=0.2
        )
        self.link.listen("tawasul_test", self.heard.append)

    async def _elected(self) -> None:
        self.events.append("elected")

    async def _deposed(self) -> None:
        self.events.append("deposed")


def test_long_lists_are_cut_into_payloads_postgresql_takes() -> None:
    keys = [f"checkin:request:{n}" for n in range(2000)]
    payloads = chunks(keys)
    assert len(payloads) > 1 and all(len(p.encode()) <= 7000 for p in payloads)
    assert [key for payload in payloads for key in payload.split("\n")] == keys


async def test_one_leader_and_another_when_it_dies(postgresql: Database) -> None:
    members = [Member(postgresql) for _ in range(3)]
    for member in members:
        member.link.start()
    try:
        await eventually(lambda: any(m.link.leader for m in members), "a leader", 10)
        await asyncio.sleep(0.6)  # every standby has tried the lock again, in vain
        assert sum(m.link.leader for m in members) == 1
        leader = next(m for m in members if m.link.leader)
        others = [m for m in members if m is not leader]

        # Notifications reach every process, the sender's too.
        await leader.link.notify("tawasul_test", ["a", "b"])
        await eventually(lambda: all(m.heard == ["a", "b"] for m in members), "the notices")

        # The leader's process dies: its socket closes, nothing is said.
        died_at = time.monotonic()
        task = leader.link._task
        assert task is not None and leader.link._connection is not None
        task.cancel()
        leader.link._connection.terminate()
        await eventually(lambda: any(m.link.leader for m in others), "a new leader", 10)
        assert time.monotonic() - died_at < 10
        await asyncio.sleep(0.6)
        assert sum(m.link.leader for m in others) == 1
    finally:
        for member in members:
            await member.link.stop()
    assert all(m.events in ([], ["elected", "deposed"]) for m in members)


async def test_a_leader_whose_connection_fails_steps_down(postgresql: Database) -> None:
    member = Member(postgresql)
    member.link.start()
    try:
        await eventually(lambda: member.link.leader, "leadership", 10)
        connection = member.link._connection
        assert connection is not None
        async with postgresql.engine.begin() as other:
            pid = connection.get_server_pid()
            await other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        await eventually(lambda: "deposed" in member.events, "stepping down", 10)
        await eventually(lambda: member.link.leader, "leadership again", 10)
        assert member.events == ["elected", "deposed", "elected"]
    finally:
        await member.link.stop()


async def _health(http: aiohttp.ClientSession, server: Server) -> dict[str, str]:
    try:
        async with http.get(server.url + "/healthz") as answer:
            return dict(await answer.json())
    except aiohttp.ClientError:
        return {}


async def test_serve_processes_elect_one_scheduler_and_replace_it_when_killed(
    postgresql: Database, tmp_path: Path
) -> None:
    servers: list[Server] = []
    for n in range(2):
        folder = tmp_path / f"p{n}"
        folder.mkdir()
        port = free_port()
        config = write_config(
            folder / "config.toml",
            {
                "database": {"url": postgresql.url},
                "server": {"port": port, "public_url": f"http://127.0.0.1:{port}"},
                "privacy": {"key": POSTGRESQL_KEY},
            },
        )
        command = tawasul_command("serve", "--config", str(config))
        servers.append(await start_server(command, f"http://127.0.0.1:{port}/healthz", cwd=folder))
    try:
        async with aiohttp.ClientSession() as http:

            async def roles() -> list[str]:
                return [(await _health(http, s)).get("scheduler", "") for s in servers]

            deadline = time.monotonic() + 20
            while sorted(await roles()) != ["leader", "standby"]:
                assert time.monotonic() < deadline, await roles()
                await asyncio.sleep(0.1)
            leader = servers[(await roles()).index("leader")]
            standby = next(s for s in servers if s is not leader)

            leader.process.kill()
            await leader.process.wait()
            killed_at = time.monotonic()
            # Written while no process leads: the next leader finds it at once.
            async with postgresql.session() as session, session.begin():
                await FollowUpRepository(session).schedule(
                    "test:orphan",
                    "no_such_kind",  # run means cancelled: the dispatcher knows no such kind
                    datetime.now(UTC) - timedelta(minutes=1),
                    now=datetime.now(UTC),
                )
            while (await _health(http, standby)).get("scheduler") != "leader":
                assert time.monotonic() - killed_at < 10, "no new leader within 10 s"
                await asyncio.sleep(0.05)
            took_over = time.monotonic() - killed_at

            async def status() -> str:
                async with postgresql.session() as session:
                    row = await FollowUpRepository(session).get("test:orphan")
                    return row.status if row is not None else ""

            while await status() == FOLLOWUP_PENDING:
                assert time.monotonic() - killed_at < 15, "the orphan did not run"
                await asyncio.sleep(0.05)
            assert await status() == FOLLOWUP_CANCELLED
            ran = time.monotonic() - killed_at
            print(f"new leader {took_over:.2f} s after the kill, the orphan run {ran:.2f} s after")
    finally:
        for server in servers:
            await server.stop()


async def test_two_outboxes_never_send_one_message_twice_and_keep_each_ones_order(
    postgresql: Database, twilio: FakeTwilio
) -> None:
    people = [f"+96657{n:07d}" for n in range(8)]
    senders: list[OutboxSender] = []
    channels: list[TwilioChannel] = []
    for _ in range(2):  # two processes: each its own channel client and sender
        channel = TwilioChannel(
            ACCOUNT_SID,
            AUTH_TOKEN,
            CHARITY,
            public_url=PUBLIC_URL,
            api_base_url=twilio.base_url,
            messages_per_second=FAST_SENDER,
        )
        await channel.start()
        channels.append(channel)
        senders.append(OutboxSender(postgresql, {"whatsapp": channel}, lambda: datetime.now(UTC)))
    twilio.answer_after = 0.01
    identities = {}
    async with postgresql.session() as session, session.begin():
        for phone in people:
            identity = await IdentityRepository(session).get_or_create(
                Address("whatsapp", phone), datetime.now(UTC)
            )
            identities[phone] = identity.id
    try:
        for outbox in senders:
            outbox.start()
        for n in range(6):  # stored while both send, a little at a time
            async with postgresql.session() as session, session.begin():
                for phone in people:
                    await MessageRepository(session).enqueue(
                        identities[phone],
                        "whatsapp",
                        OutboundMessage(f"{phone}/{n}", "ar"),
                        datetime.now(UTC),
                        kind="reply",
                    )
            for outbox in senders:
                outbox.wake()
            await asyncio.sleep(0)
        await eventually(lambda: len(twilio.messages) >= 6 * len(people), "every message", 30)
        await asyncio.sleep(0.3)  # nothing more arrives
    finally:
        for outbox in senders:
            await outbox.stop()
        for channel in channels:
            await channel.stop()
    for phone in people:
        assert twilio.bodies(f"whatsapp:{phone}") == [f"{phone}/{n}" for n in range(6)]
    assert twilio.most_at_once_to_one == 1
    async with postgresql.session() as session:
        rows = (await session.scalars(select(Message))).all()
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}


def _counting(turn: Turn) -> Transition:
    """A flow that counts the messages of its conversation: a lost update loses a count."""
    seen = int(turn.state.data.get("seen", 0)) + 1
    state = replace(turn.state, data={**turn.state.data, "seen": seen})
    return Transition(state, (OutboundMessage(f"{turn.message.text}:{seen}", "ar"),))


async def test_two_processes_given_one_beneficiarys_messages_at_once_take_turns(
    postgresql: Database,
) -> None:
    # Two engines as in two processes: each its own pool of connections.
    other = Database(postgresql.url, keyring=postgresql.keyring)
    engines = [
        ConversationEngine(db, FlowSettings(), respond=_counting) for db in (postgresql, other)
    ]
    people = [Address("whatsapp", f"+96658{n:07d}") for n in range(3)]
    # Known already (they wrote on another matter), with no conversation row to lock yet.
    async with postgresql.session() as session, session.begin():
        for who in people:
            await IdentityRepository(session).get_or_create(who, datetime.now(UTC))
    try:

        async def say(n: int, who: Address) -> None:
            message = InboundMessage(
                who, datetime.now(UTC), f"m{n}", platform_message_id=f"{who.user_id}/{n}"
            )
            await engines[n % 2].handle(message)

        # Each process takes a batch of several beneficiaries' messages at once, in
        # different orders: their locks must not deadlock, and no count is lost.
        await asyncio.gather(*(say(n, who) for n in range(40) for who in people))
    finally:
        await other.dispose()
    async with postgresql.session() as session:
        for who in people:
            identity = await IdentityRepository(session).find(who)
            assert identity is not None and identity.id is not None
            state = await ConversationRepository(session).load(identity.id)
            assert state.data["seen"] == 40
            replies = (
                await session.scalars(
                    select(Message.text).where(
                        col(Message.identity_id) == identity.id, col(Message.direction) == "out"
                    )
                )
            ).all()
            assert sorted(int(text.split(":")[1]) for text in replies) == list(range(1, 41))


async def test_live_events_and_the_command_line_s_writes_reach_every_process(
    postgresql: Database, tmp_path: Path
) -> None:
    settings = Settings(server={"media_dir": str(tmp_path / "media")})
    other = Database(postgresql.url, keyring=postgresql.keyring)
    first, second = Tawasul(settings, postgresql), Tawasul(settings, other)
    try:
        async with served(first.app()), served(second.app()):
            clusters = [first.cluster, second.cluster]
            await eventually(lambda: any(c is not None and c.leader for c in clusters), "a leader")
            leader = first if first.cluster is not None and first.cluster.leader else second
            standby = second if leader is first else first

            # A dashboard event on one process shows on the other's pages, once.
            with (
                standby.dashboard.live.subscribe() as page,
                leader.dashboard.live.subscribe() as own,
            ):
                leader.dashboard.live.publish("handoff", id=7, change="opened")
                event = await asyncio.wait_for(page.get(), 5)
                assert event is not None and event.data == {"id": 7, "change": "opened"}
                seen = await asyncio.wait_for(own.get(), 5)
                assert seen is not None and seen.data["id"] == 7
                await asyncio.sleep(0.3)  # its own event, relayed back, is not shown twice
                assert own.empty()

            # A follow-up the command line writes gets its job from the leader at once
            # (the sweep, a minute apart, runs only what is due and sets no job).
            due = datetime.now(UTC) + timedelta(hours=1)
            async with postgresql.session() as session, session.begin():
                await FollowUpRepository(session).schedule(
                    "test:from-the-cli", "no_such_kind", due, now=datetime.now(UTC)
                )
            news = Announcements(postgresql)
            news.followups(["test:from-the-cli"])
            await news.send()
            deadline = time.monotonic() + 5
            while "test:from-the-cli" not in await leader.scheduler.jobs():
                assert time.monotonic() < deadline, "the leader never heard of it"
                await asyncio.sleep(0.05)
    finally:
        await other.dispose()


async def test_a_visit_the_command_line_schedules_is_sent_at_once(
    postgresql: Database, twilio: FakeTwilio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox looks again only when woken: a message that reaches the beneficiary
    # was announced by the command line, not found on a later look.
    monkeypatch.setattr(outbox, "IDLE_CHECK", 3600.0)
    server = Tawasul(make_settings(tmp_path, twilio), postgresql)
    me = Address("whatsapp", BENEFICIARY)
    async with served(server.app()):
        for n, line in enumerate(INTAKE_WHATSAPP):
            await server.engine.handle(
                InboundMessage(me, datetime.now(UTC), line, platform_message_id=f"in-{n}")
            )
        server.outbox.wake()
        await settled(postgresql, "whatsapp")
        assert "REQ-000001" in " ".join(twilio.bodies(f"whatsapp:{BENEFICIARY}"))
        told = len(twilio.messages)

        config = write_config(
            tmp_path / "config.toml",
            {"database": {"url": postgresql.url}, "privacy": {"key": POSTGRESQL_KEY}},
        )
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        command = tawasul_command(
            "visits", "schedule", "REQ-000001", "--at", f"{tomorrow} 10:00", "--config", str(config)
        )
        cli = await asyncio.create_subprocess_exec(
            *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0, err.decode()
        assert "APT-000001" in out.decode()
        visit = await eventually(
            lambda: [b for b in twilio.bodies()[told:] if "APT-000001" in b], "the visit's message"
        )
        assert len(visit) == 1
