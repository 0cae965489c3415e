"""What a Telegram update is for, translated without a bot, a server or an event loop."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.telegram_api import group_callback, group_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.types import Address, InboundMessage
from handlers.base import StaffUpdate
from handlers.telegram_updates import (
    ForFlows,
    ForStaff,
    Ignored,
    Malformed,
    StaffGroupMoved,
    Translated,
    WhoAmI,
    parse_update,
    plain_text,
    translate,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
DATE = 1718000000
CHAT = 512345678
STAFF = -1001987654321
OTHER_GROUP = -1005550001111
SARA = 61234567
BOT_NAME = "tawasul_test_bot"
PRIVATE = {"id": CHAT, "first_name": "نورة", "type": "private"}
BEN = {"id": CHAT, "is_bot": False, "first_name": "نورة"}


def private(update_id: int, **fields: Any) -> dict[str, Any]:
    body = {"message_id": 3, "from": BEN, "chat": PRIVATE, "date": DATE}
    return {"update_id": update_id, "message": body | fields}


def in_group(update_id: int, chat: int, text: str, **fields: Any) -> dict[str, Any]:
    update = {"update_id": update_id} | group_message(chat, SARA, text, first_name="سارة")
    update["message"] |= {"message_id": 40} | fields
    return update


def tap(update_id: int, chat: dict[str, Any], data: str | None = "5") -> dict[str, Any]:
    query = {
        "id": "q1",
        "from": BEN,
        "message": {"message_id": 77, "chat": chat, "date": DATE, "text": "؟"},
        "chat_instance": "-1",
    }
    return {"update_id": update_id, "callback_query": query | ({"data": data} if data else {})}


def staff_tap(update_id: int) -> dict[str, Any]:
    query = group_callback(STAFF, SARA, "h:take:3", 41, first_name="سارة", query_id="q2")
    return {"update_id": update_id} | query


def said(update_id: int, text: str, message_id: int = 40) -> StaffUpdate:
    return StaffUpdate(
        chat_id=STAFF,
        user_id=SARA,
        user_name="سارة",
        text=text,
        callback_data=None,
        reply_to=None,
        message_id=f"tg:{STAFF}:{message_id}",
        update_id=update_id,
    )


def inbound(update_id: int, text: str, **fields: Any) -> InboundMessage:
    return InboundMessage(
        address=Address("telegram", str(CHAT)),
        received_at=fields.pop("received_at", datetime.fromtimestamp(DATE, UTC)),
        text=text,
        platform_message_id=str(update_id),
        **fields,
    )


# (update, whether staff updates and /whoami are wanted, what it is for)
CASES = [
    pytest.param(private(1, text="مرحبا"), False, ForFlows(inbound(1, "مرحبا")), id="private"),
    pytest.param(
        tap(2, PRIVATE),
        False,
        ForFlows(inbound(2, "5", payload="5", received_at=NOW), "q1"),
        id="private-tap-answered-once-stored",
    ),
    pytest.param(
        tap(3, {"id": OTHER_GROUP, "type": "supergroup"}),
        False,
        Ignored("callback query without data or outside a private chat", "q1"),
        id="group-tap-still-answered",
    ),
    pytest.param(
        tap(4, PRIVATE, data=None),
        False,
        Ignored("callback query without data or outside a private chat", "q1"),
        id="tap-without-data",
    ),
    pytest.param(
        private(5, dice={"emoji": "🎲", "value": 4}),
        False,
        Ignored("message with unsupported content"),
        id="dice",
    ),
    pytest.param(
        in_group(6, STAFF, "/case REQ-1"),
        True,
        ForStaff(said(6, "/case REQ-1")),
        id="staff-command",
    ),
    pytest.param(
        in_group(7, STAFF, f"/case@{BOT_NAME} REQ-1"),
        True,
        ForStaff(said(7, "/case REQ-1")),
        id="staff-command-to-us",
    ),
    pytest.param(
        in_group(8, STAFF, "/case@other_bot REQ-1"),
        True,
        Ignored("a staff message by a bot, anonymous, or for another bot"),
        id="staff-command-to-another-bot",
    ),
    pytest.param(
        in_group(9, STAFF, "/case REQ-1"),
        False,
        Ignored("message in a supergroup chat"),
        id="staff-group-not-wanted",
    ),
    pytest.param(
        staff_tap(10),
        True,
        ForStaff(
            StaffUpdate(
                chat_id=STAFF,
                user_id=SARA,
                user_name="سارة",
                text="",
                callback_data="h:take:3",
                reply_to=None,
                message_id=f"tg:{STAFF}:41",
                update_id=10,
            ),
            "q2",
        ),
        id="staff-tap",
    ),
    pytest.param(
        in_group(11, STAFF, "", migrate_to_chat_id=-1002223334445),
        True,
        StaffGroupMoved(-1002223334445),
        id="staff-group-became-a-supergroup",
    ),
    pytest.param(
        in_group(12, OTHER_GROUP, "/whoami"),
        True,
        WhoAmI(OTHER_GROUP, SARA, 40, None),
        id="whoami-in-a-new-group",
    ),
    pytest.param(
        in_group(13, STAFF, f"/WhoAmI@{BOT_NAME}"),
        True,
        WhoAmI(STAFF, SARA, 40, None),
        id="whoami-before-staff-work",
    ),
    pytest.param(
        in_group(14, OTHER_GROUP, "/whoami", is_topic_message=True, message_thread_id=9),
        True,
        WhoAmI(OTHER_GROUP, SARA, 40, 9),
        id="whoami-in-a-forum-topic",
    ),
    pytest.param(
        in_group(15, OTHER_GROUP, "/whoami@other_bot"),
        True,
        Ignored("message in a supergroup chat"),
        id="whoami-for-another-bot",
    ),
    pytest.param(
        private(16, text="/whoami", entities=[{"type": "bot_command", "offset": 0, "length": 7}]),
        True,
        ForFlows(inbound(16, "/whoami")),
        id="whoami-in-private-is-a-message",
    ),
]


@pytest.mark.parametrize(("data", "staff", "expected"), CASES)
def test_an_update_is_for_one_place(
    data: dict[str, Any], staff: bool, expected: Translated
) -> None:
    update = parse_update(data)
    got = translate(
        update,
        now=NOW,
        staff_chat_id=STAFF if staff else None,
        bot_username=BOT_NAME,
        whoami=staff,
    )
    assert got == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"update_id": 1, "message": {"chat": "x"}}, id="message-not-an-object"),
        pytest.param(private(2, location={"latitude": "north", "longitude": 46.6}), id="location"),
        pytest.param(private(3, text=["a", "list"]), id="text-not-a-string"),
    ],
)
def test_a_malformed_update_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(Malformed):
        translate(parse_update(data), now=NOW)


# --- a private chat's plain text, read without PTB's objects ---

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "type", "x"]), st.integers(), max_size=2),
)


@st.composite
def _near_plain(draw: st.DrawFn) -> dict[str, Any]:
    """A private text message as Telegram sends it, with some of its fields dropped,
    replaced by a value of another type, or joined by others."""
    user = {"id": SARA, "is_bot": False, "first_name": "سارة", "language_code": "ar"}
    chat = {"id": CHAT, "type": "private", "first_name": "سارة", "username": "sara"}
    message: dict[str, Any] = {
        "message_id": 7,
        "from": user,
        "chat": chat,
        "date": DATE,
        "text": draw(st.text(min_size=0, max_size=20)),
    }
    update: dict[str, Any] = {"update_id": 99, "message": message}
    keys = ["update_id", "message", "entities", "caption", "photo", "reply_to_message"]
    for part, names in ((update, keys[:2]), (message, [*message, *keys[2:]])):
        for name in draw(st.lists(st.sampled_from(names), max_size=2)):
            if draw(st.booleans()):
                part.pop(name, None)
            else:
                part[name] = draw(_ANY_VALUE)
    for part, names in ((chat, [*chat, "is_forum"]), (user, [*user, "is_premium", "x"])):
        for name in draw(st.lists(st.sampled_from(names), max_size=2)):
            if draw(st.booleans()):
                part.pop(name, None)
            else:
                part[name] = draw(_ANY_VALUE)
    return update


def _by_ptb(data: dict[str, Any]) -> Translated | str:
    try:
        update = parse_update(data)
        return translate(update, now=NOW, staff_chat_id=STAFF, bot_username=BOT_NAME, whoami=True)
    except Malformed:
        return "malformed"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_near_plain())
def test_a_plain_text_message_read_without_ptb_reads_as_ptb_reads_it(
    data: dict[str, Any],
) -> None:
    plain = plain_text(copy.deepcopy(data))
    if plain is not None:
        assert _by_ptb(data) == plain


@pytest.mark.parametrize(
    "data",
    [
        private(5, text="السلام عليكم"),
        {
            "update_id": 6,
            "message": {
                "message_id": 11,
                "from": BEN | {"last_name": "ع", "username": "n", "language_code": "ar"},
                "chat": PRIVATE | {"last_name": "ع", "username": "n"},
                "date": DATE,
                "text": "١",
            },
        },
    ],
)
def test_what_beneficiaries_usually_send_is_read_without_ptb(data: dict[str, Any]) -> None:
    plain = plain_text(data)
    assert plain is not None
    assert plain == _by_ptb(data)
    assert plain.message.platform_message_id == str(data["update_id"])
    assert plain.message.received_at == datetime.fromtimestamp(DATE, UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"entities": [{"type": "bot_command", "offset": 0, "length": 6}]},
        {"caption": "x"},
        {"chat": {"id": STAFF, "type": "supergroup", "title": "staff"}},
        {"date": "today"},
        {"text": ""},
    ],
)
def test_anything_else_is_left_to_ptb(fields: dict[str, Any]) -> None:
    data = private(8, text="مرحبا")
    data["message"] = data["message"] | fields
    assert plain_text(data) is None
