"""The stand-ins refuse what the platforms refuse, through the real twilio and PTB clients.

A stand-in more lenient than its platform lets a bug through every test that uses it:
these tests hold each refusal the channels rely on. Twilio's rules are its REST API's
(shared/peers/twilio_api_v2010.json, and the error codes its documentation gives);
Telegram's are the Bot API's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from channels import ACCOUNT_SID, AUTH_TOKEN, TOKEN
from fakes.telegram_api import FakeTelegram, callback_query
from fakes.twilio_api import FakeTwilio, utf16_units
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup
from telegram.error import BadRequest, RetryAfter, TimedOut
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from handlers.twilio import BaseUrlHttpClient

CHARITY = "whatsapp:+966550000000"
PHONE = "whatsapp:+966551234567"
CONTENT_SID = "HX" + "0" * 32


# --- Twilio ---


@pytest.fixture
async def messages(twilio: FakeTwilio) -> AsyncIterator[Any]:
    """The real twilio client's Messages resource, pointed at the stand-in."""
    async with aiohttp.ClientSession() as session:
        http = BaseUrlHttpClient(session, twilio.base_url, 10.0)
        yield Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http).messages


async def refused(messages: Any, **fields: Any) -> int:
    with pytest.raises(TwilioRestException) as caught:
        await messages.create_async(**fields)
    assert caught.value.status == 400
    return int(caught.value.code)


async def test_twilio_takes_a_well_formed_message(messages: Any, twilio: FakeTwilio) -> None:
    sent = await messages.create_async(to=PHONE, from_=CHARITY, body="مرحبا")
    assert sent.sid.startswith("SM") and twilio.bodies() == ["مرحبا"]


async def test_twilio_counts_the_body_in_utf16_units(messages: Any, twilio: FakeTwilio) -> None:
    # 800 emoji are 800 characters but 1,600 UTF-16 units: the limit exactly.
    assert utf16_units("😀" * 800) == 1600
    await messages.create_async(to=PHONE, from_=CHARITY, body="😀" * 800)
    assert await refused(messages, to=PHONE, from_=CHARITY, body="😀" * 800 + "x") == 21617
    assert await refused(messages, to=PHONE, from_=CHARITY, body="ب" * 1601) == 21617
    assert len(twilio.messages) == 1


@pytest.mark.parametrize("to", ["whatsapp:Tawasul", "Tawasul", "whatsapp:", "+9665512x4567"])
async def test_twilio_refuses_a_to_that_is_not_a_number(messages: Any, to: str) -> None:
    assert await refused(messages, to=to, from_=CHARITY, body="x") == 21211


async def test_twilio_refuses_a_whatsapp_to_from_an_sms_sender(messages: Any) -> None:
    assert await refused(messages, to=PHONE, from_="+966550000000", body="x") == 21910
    sms = "+966551234567"
    assert await refused(messages, to=sms, from_=CHARITY, body="x") == 21910


@pytest.mark.parametrize("variables", ["{", '{"1": "REQ-000001"', "[1, 2]", "null", "نعم"])
async def test_twilio_refuses_content_variables_that_are_not_a_json_object(
    messages: Any, variables: str
) -> None:
    code = await refused(
        messages, to=PHONE, from_=CHARITY, content_sid=CONTENT_SID, content_variables=variables
    )
    assert code == 21656


async def test_twilio_takes_ten_media_urls_and_no_more(messages: Any, twilio: FakeTwilio) -> None:
    urls = [f"https://example.org/{n}.jpg" for n in range(11)]
    await messages.create_async(to=PHONE, from_=CHARITY, media_url=urls[:10])
    assert await refused(messages, to=PHONE, from_=CHARITY, media_url=urls) == 21623
    assert [len(m["MediaUrl"]) for m in twilio.messages] == [10]


async def test_twilio_takes_template_variables_as_a_json_object(
    messages: Any, twilio: FakeTwilio
) -> None:
    variables = json.dumps({"1": "REQ-000001", "2": "accepted"})
    await messages.create_async(
        to=PHONE, from_=CHARITY, content_sid=CONTENT_SID, content_variables=variables
    )
    assert json.loads(twilio.messages[0]["ContentVariables"]) == {
        "1": "REQ-000001",
        "2": "accepted",
    }


# --- Telegram ---


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    """The real python-telegram-bot client, pointed at the stand-in."""
    async with Bot(TOKEN, base_url=f"{telegram.base_url}/bot") as client:
        yield client


class Ticking:
    """A clock the test moves: the stand-in's rate limits without waiting."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_telegram_refuses_a_second_message_to_one_chat_within_a_second(
    bot: Bot, telegram: FakeTelegram
) -> None:
    clock = Ticking()
    telegram.limits(clock=clock)
    await bot.send_message(1, "one")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "two")
    assert caught.value.retry_after in (1, timedelta(seconds=1))
    await bot.send_message(2, "another chat is another limit")
    clock.now += 1.0
    await bot.send_message(1, "two, a second later")
    sent = [c.params["text"] for c in telegram.calls("sendMessage") if c.params["chat_id"] == 1]
    assert sent == ["one", "two", "two, a second later"]
    assert [telegram.message(1, m)["text"] for m in telegram.message_ids(1)] == [  # type: ignore[index]
        "one",
        "two, a second later",
    ]


async def test_telegram_refuses_more_than_thirty_messages_a_second(
    bot: Bot, telegram: FakeTelegram
) -> None:
    clock = Ticking()
    telegram.limits(clock=clock)
    for chat in range(1, 31):
        await bot.send_message(chat, "x")
    with pytest.raises(RetryAfter):
        await bot.send_message(31, "the 31st in one second")
    clock.now += 0.1  # three more tokens
    for chat in range(31, 34):
        await bot.send_message(chat, "x")
    with pytest.raises(RetryAfter):
        await bot.send_message(34, "x")


async def test_telegram_limits_can_be_raised_for_tests_about_conversations(
    bot: Bot, telegram: FakeTelegram
) -> None:
    telegram.limits(per_chat=50, overall=1000, clock=Ticking())
    for n in range(50):
        await bot.send_message(1, f"{n}")
    with pytest.raises(RetryAfter):
        await bot.send_message(1, "the 51st")


async def test_telegram_refuses_a_button_without_text(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(1, "x", reply_markup=ReplyKeyboardMarkup([[" "]]))
    empty = InlineKeyboardMarkup([[InlineKeyboardButton("", callback_data="1")]])
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(1, "x", reply_markup=empty)
    inert = InlineKeyboardMarkup([[InlineKeyboardButton("نعم")]])
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(1, "x", reply_markup=inert)


async def test_telegram_answers_only_a_query_it_delivered_and_only_once(
    bot: Bot, telegram: FakeTelegram
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query("123456")
    tap = telegram.queue_update(callback_query(7, "5"))
    query_id = tap["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)


async def test_telegram_can_be_slow_or_time_out(bot: Bot, telegram: FakeTelegram) -> None:
    telegram.slow("sendMessage", 0.2)
    assert (await bot.send_message(1, "late but there")).text == "late but there"
    telegram.slow("sendMessage", 30)
    with pytest.raises(TimedOut):
        await bot.send_message(1, "never answered in time", read_timeout=0.2)
    assert [c.params["text"] for c in telegram.calls("sendMessage")] == [
        "late but there",
        "never answered in time",
    ]
    await asyncio.sleep(0)
