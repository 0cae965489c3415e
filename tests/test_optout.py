"""STOP and START: proactive messages off and on again, conversations untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import BENEFICIARY, WhatsApp, count, eventually, make_settings
from fakes.twilio_api import FakeTwilio
from sqlmodel import col

import flows
from bot.engine import utcnow
from bot.server import Tawasul
from flows.types import (
    Address,
    ConversationState,
    FlowSettings,
    InboundMessage,
    Lookup,
    OutboundMessage,
    SetOptOut,
    Transition,
    Turn,
)
from storage.db import Database
from storage.models import ChannelIdentity, Message
from storage.repositories import IdentityRepository, MessageRepository

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def respond(
    said: str, *, opted_out: bool = False, state: ConversationState | None = None
) -> Transition:
    message = InboundMessage(Address("whatsapp", BENEFICIARY), NOW, said)
    turn = Turn(
        message,
        state or ConversationState(flow="menu", step="choose"),
        NOW,
        Lookup(sender_phone=BENEFICIARY, opted_out=opted_out),
        FlowSettings(organization_name="جمعية البر"),
    )
    return flows.respond(turn)


@pytest.mark.parametrize(
    "said",
    [
        "STOP",
        "stop",
        " Stop! ",
        "إيقاف",
        "ايقاف",
        "إلغاء الاشتراك",
        "الغاء الاشتراك",
        "unsubscribe",
    ],
)
def test_stop_as_the_whole_message_turns_proactive_messages_off(said: str) -> None:
    transition = respond(said)
    assert transition.effects == (SetOptOut(True),)
    [confirmation] = transition.replies
    assert "بدء" in confirmation.text  # how to resume, in their language
    assert (transition.state.flow, transition.state.step) == ("menu", "choose")


def test_stop_inside_a_longer_message_is_not_an_opt_out() -> None:
    assert not any(isinstance(e, SetOptOut) for e in respond("please stop the reminders").effects)


def test_stop_keeps_an_intake_where_it_was_and_answers_in_english() -> None:
    state = ConversationState(flow="intake", step="city", data={"name": "x"}, language="en")
    transition = respond("STOP", state=state)
    assert transition.effects == (SetOptOut(True),)
    assert "START" in transition.replies[0].text
    assert (transition.state.flow, transition.state.step) == ("intake", "city")
    assert transition.state.data["name"] == "x"


@pytest.mark.parametrize("said", ["START", "start", "بدء", "ابدأ", "/start"])
def test_start_after_stop_turns_them_on_again(said: str) -> None:
    transition = respond(said, opted_out=True)
    assert transition.effects == (SetOptOut(False),)
    assert "إيقاف" in transition.replies[0].text  # and how to stop again


def test_start_when_not_opted_out_is_the_menu_as_before() -> None:
    transition = respond("start")
    assert transition.effects == ()
    assert "طلب دعم جديد" in flows.as_plain_text(transition.replies[0])


@pytest.fixture
async def service(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


async def notify(tawasul: Tawasul, text: str) -> int:
    """A proactive message to the beneficiary, as the scheduler or staff desk stores one."""
    async with tawasul.database.session() as session, session.begin():
        identity = await IdentityRepository(session).find(Address("whatsapp", BENEFICIARY))
        assert identity is not None and identity.id is not None
        message_id = await MessageRepository(session).enqueue(
            identity.id, "whatsapp", OutboundMessage(text, "ar"), utcnow(), kind="proactive"
        )
    tawasul.outbox.wake()
    return message_id


async def opted_out(tawasul: Tawasul) -> bool:
    async with tawasul.database.session() as session:
        identity = await IdentityRepository(session).find(Address("whatsapp", BENEFICIARY))
        assert isinstance(identity, ChannelIdentity)
        return identity.opted_out


async def test_whatsapp_stop_silences_notices_but_not_the_conversation(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    await phone.send("مرحبا")
    assert "بدء" in await phone.send("إيقاف")
    assert await opted_out(tawasul)

    silenced = await notify(tawasul, "تحديث على طلبك")
    database = tawasul.database

    async def settled() -> int:
        return await count(
            database, Message, col(Message.id) == silenced, col(Message.status) == "failed"
        )

    deadline = asyncio.get_running_loop().time() + 10
    while not await settled():
        assert asyncio.get_running_loop().time() < deadline, "the notice was never settled"
        await asyncio.sleep(0.02)
    assert "تحديث على طلبك" not in twilio.bodies()
    # Their own conversation still works.
    assert "طلب دعم جديد" in await phone.send("٠")

    assert "إيقاف" in await phone.send("بدء")
    assert not await opted_out(tawasul)
    await notify(tawasul, "تحديث آخر")
    await eventually(lambda: twilio.bodies()[-1] == "تحديث آخر", "the notice after START")
