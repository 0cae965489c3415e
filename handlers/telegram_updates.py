"""Telegram updates translated: what one update is for (the flows, the staff group, a
``/whoami``, nothing) and its neutral message. Pure: no I/O, no clock, no bot."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import CallbackQuery, Message, Update, User
from telegram.constants import ChatType, MessageEntityType

from flows.types import Address, InboundMessage, Location, Media
from handlers.base import StaffUpdate

CHANNEL = "telegram"
# Media references are opaque to the flows; the channel's fetch_media turns this one back
# into a download.
FILE_PREFIX = "tg-file:"
# The kinds of update the bot asks Telegram for; any other is acknowledged unread.
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
# A sticker is never a supporting document, though a static one is a WebP image: a type
# outside image/* lets the flows refuse it like any other media they do not take.
STICKER_CONTENT_TYPE = "application/x-tgsticker"
# In any group, also one not yet configured as the staff group: answers its id and the sender's.
WHOAMI = "whoami"
# "/status@tawasul_bot REQ-1": the command word and the bot it is addressed to.
_ADDRESSED_COMMAND = re.compile(r"(/[A-Za-z0-9_]{1,32})@([A-Za-z0-9_]{1,32})(?=\s|$)")
# What a beneficiary's private message must carry to be read at all.
_SUPPORTED_CONTENT = (
    "text",
    "photo",
    "document",
    "location",
    "contact",
    "sticker",
    "voice",
    "audio",
    "video",
    "video_note",
    "animation",
)
# What reading an update whose fields have the wrong types raises (PTB keeps the JSON's
# types as they came).
_WRONG_TYPES = (AttributeError, TypeError, ValueError, KeyError, OverflowError)


class Malformed(ValueError):
    """An update that is not what Telegram sends: a field missing or of the wrong type."""


@dataclass(frozen=True, slots=True)
class ForFlows:
    """A beneficiary's message or button tap in their private chat with the bot.

    Attributes:
        query_id: the tap to answer (its spinner stops) once the message is stored.
    """

    message: InboundMessage
    query_id: str | None = None


@dataclass(frozen=True, slots=True)
class ForStaff:
    """A message or a button tap in the staff group.

    Attributes:
        query_id: the tap to answer once the staff update was handled.
    """

    update: StaffUpdate
    query_id: str | None = None


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """``/whoami`` in a group: the answer goes to ``chat_id``, replying to ``message_id``."""

    chat_id: int
    user_id: int
    message_id: int
    thread_id: int | None


@dataclass(frozen=True, slots=True)
class StaffGroupMoved:
    """The staff group became a supergroup: ``telegram.staff_chat_id`` must change to it."""

    new_chat_id: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """An update nobody reads; ``why`` is for the log (never its content).

    Attributes:
        query_id: a tap still answered, so that its spinner stops.
    """

    why: str
    query_id: str | None = None


Translated = ForFlows | ForStaff | WhoAmI | StaffGroupMoved | Ignored


def parse_update(data: dict[str, Any]) -> Update:
    """The update of a webhook's JSON object; Malformed when it does not read as one."""
    try:
        return Update.de_json(data, None)
    except Exception as error:  # PTB's models raise whatever a wrong field makes them
        raise Malformed(type(error).__name__) from None


# A private chat's plain text message, as Telegram sends nearly every one a beneficiary
# writes: these fields, and no other (entities, a reply, a caption, media… go to PTB).
_PLAIN_UPDATE = frozenset(("update_id", "message"))
_PLAIN_MESSAGE = frozenset(("message_id", "from", "chat", "date", "text"))
_PLAIN_CHAT = frozenset(("id", "type", "first_name", "last_name", "username"))
_PLAIN_USER = frozenset(
    ("id", "is_bot", "first_name", "last_name", "username", "language_code", "is_premium")
)


def plain_text(data: dict[str, Any]) -> ForFlows | None:
    """What ``translate(parse_update(data))`` gives for a private chat's plain text
    message, read from the JSON without PTB's objects (building them cost a twentieth of
    the server's time at full load); None for any other update, which PTB reads."""
    message = data.get("message")
    if data.keys() != _PLAIN_UPDATE or type(message) is not dict:
        return None
    chat, user = message.get("chat"), message.get("from")
    if (
        message.keys() != _PLAIN_MESSAGE
        or type(chat) is not dict
        or type(user) is not dict
        or not chat.keys() <= _PLAIN_CHAT
        or not user.keys() <= _PLAIN_USER
    ):
        return None
    chat_id, date, text = chat.get("id"), message["date"], message["text"]
    if (
        chat.get("type") != ChatType.PRIVATE
        or type(chat_id) is not int
        or chat_id <= 0
        or type(message["message_id"]) is not int
        or type(date) is not int
        or type(text) is not str
        or not text
        or type(user.get("id")) is not int
        or type(user.get("is_bot")) is not bool
        or "first_name" not in user
    ):
        return None
    try:
        received_at = datetime.fromtimestamp(date, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # PTB's answer to it stands
    return ForFlows(
        InboundMessage(
            address=Address(CHANNEL, str(chat_id)),
            received_at=received_at,
            text=text,
            platform_message_id=str(data["update_id"]),
        )
    )


def translate(
    update: Update,
    *,
    now: datetime,
    staff_chat_id: int | None = None,
    bot_username: str | None = None,
    whoami: bool = False,
) -> Translated:
    """What ``update`` is for, and its neutral message.

    Args:
        now: the time of a button tap (Telegram dates messages, not taps).
        staff_chat_id: the staff group, when staff updates are wanted: its text messages
            and its taps are for staff, nothing else of it is read.
        bot_username: this bot's username: a command addressed to another bot is not ours.
        whoami: answer ``/whoami`` in any group.

    Raises:
        Malformed: a field it reads is missing or of the wrong type.
    """
    try:
        if update.message is not None:
            return _message(update.update_id, update.message, staff_chat_id, bot_username, whoami)
        if update.callback_query is not None:
            return _callback_query(update.update_id, update.callback_query, staff_chat_id, now)
    except _WRONG_TYPES as error:
        raise Malformed(type(error).__name__) from None
    return Ignored("neither a message nor a button tap")


def _message(
    update_id: int,
    message: Message,
    staff_chat_id: int | None,
    bot_username: str | None,
    whoami: bool,
) -> Translated:
    chat = message.chat
    if whoami and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        user = message.from_user
        if _command(message, bot_username) == WHOAMI and user is not None:
            thread = message.message_thread_id if message.is_topic_message else None
            return WhoAmI(_checked(chat.id, int), user.id, message.message_id, thread)
    if staff_chat_id is not None and chat.id == staff_chat_id:
        if message.migrate_to_chat_id is not None:
            return StaffGroupMoved(message.migrate_to_chat_id)
        if message.text:
            staff = staff_update_from_message(update_id, message, bot_username)
            if staff is not None:
                return ForStaff(staff)
            return Ignored("a staff message by a bot, anonymous, or for another bot")
    if chat.type != ChatType.PRIVATE:
        return Ignored(f"message in a {str(chat.type)[:20]} chat")
    if any(getattr(message, kind) for kind in _SUPPORTED_CONTENT):
        inbound = inbound_from_message(update_id, message)
        if inbound is not None:
            return ForFlows(inbound)
    return Ignored("message with unsupported content")


def _callback_query(
    update_id: int, query: CallbackQuery, staff_chat_id: int | None, now: datetime
) -> Translated:
    chat = query.message.chat if query.message is not None else None
    if chat is not None and staff_chat_id is not None and chat.id == staff_chat_id:
        staff = staff_update_from_callback_query(update_id, query)
        if staff is None:
            return Ignored("a staff tap without data", query.id)
        return ForStaff(staff, query.id)
    inbound = inbound_from_callback_query(update_id, query, now)
    if inbound is None:
        return Ignored("callback query without data or outside a private chat", query.id)
    return ForFlows(inbound, query.id)


def _command(message: Message, bot_username: str | None) -> str | None:
    """The command word (lowercase, without the slash) that opens ``message``, when it is
    addressed to no bot in particular or to this one."""
    entities, text = message.entities, message.text
    if not text or not entities:
        return None
    first = entities[0]
    if first.type != MessageEntityType.BOT_COMMAND or first.offset != 0:
        return None
    word, _, bot = text[1 : first.length].partition("@")
    if bot and (bot_username is None or bot.lower() != bot_username.lower()):
        return None
    return word.lower()


def _checked(value: Any, kind: type) -> Any:
    """``value`` when it is of ``kind``; ValueError otherwise (a malformed update)."""
    if type(value) is not kind:
        raise ValueError(f"expected {kind.__name__}")
    return value


def inbound_from_message(update_id: int, message: Message) -> InboundMessage | None:
    """The neutral message of a private chat message, or None when it carries nothing usable.

    Raises:
        ValueError: a field it reads has the wrong type.
    """
    _checked(message.chat.id, int)
    text = _checked(message.text or message.caption or "", str)
    media: tuple[Media, ...] = ()
    location: Location | None = None
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        media = (Media(FILE_PREFIX + largest.file_id, "image/jpeg"),)
    elif message.animation:  # checked before document: Telegram sets both for a GIF
        animation = message.animation
        media = (
            Media(
                FILE_PREFIX + animation.file_id,
                animation.mime_type or "video/mp4",
                animation.file_name,
            ),
        )
    elif message.document:
        document = message.document
        media = (
            Media(
                FILE_PREFIX + document.file_id,
                document.mime_type or "application/octet-stream",
                document.file_name,
            ),
        )
    elif message.sticker:
        media = (Media(FILE_PREFIX + message.sticker.file_id, STICKER_CONTENT_TYPE),)
    elif message.voice:
        voice = message.voice
        media = (Media(FILE_PREFIX + voice.file_id, voice.mime_type or "audio/ogg"),)
    elif message.audio:
        audio = message.audio
        media = (
            Media(FILE_PREFIX + audio.file_id, audio.mime_type or "audio/mpeg", audio.file_name),
        )
    elif message.video:
        video = message.video
        media = (
            Media(FILE_PREFIX + video.file_id, video.mime_type or "video/mp4", video.file_name),
        )
    elif message.video_note:
        media = (Media(FILE_PREFIX + message.video_note.file_id, "video/mp4"),)
    elif message.location:
        latitude, longitude = message.location.latitude, message.location.longitude
        if not all(type(v) in (int, float) and math.isfinite(v) for v in (latitude, longitude)):
            raise ValueError("a location needs two finite numbers")
        location = Location(float(latitude), float(longitude))
    elif message.contact:
        # A shared contact answers the mobile question.
        text = _checked(message.contact.phone_number, str)
    elif not text:
        return None
    return InboundMessage(
        address=Address(CHANNEL, str(message.chat.id)),
        received_at=message.date.astimezone(UTC),
        text=text,
        media=media,
        platform_message_id=str(update_id),
        location=location,
    )


def inbound_from_callback_query(
    update_id: int, query: CallbackQuery, now: datetime
) -> InboundMessage | None:
    """The neutral message of an inline button tap in a private chat, else None."""
    chat = query.message.chat if query.message is not None else None
    if query.data is None or chat is None or chat.type != ChatType.PRIVATE:
        return None
    _checked(query.data, str)
    _checked(chat.id, int)
    return InboundMessage(
        address=Address(CHANNEL, str(chat.id)),
        received_at=now,
        text=query.data,
        payload=query.data,
        platform_message_id=str(update_id),
    )


def staff_update_from_message(
    update_id: int, message: Message, bot_username: str | None
) -> StaffUpdate | None:
    """The staff update of a text message in the staff group, else None.

    Nobody to name (another bot, or an admin writing anonymously as the group) or a
    command addressed to another bot (``/status@other_bot``): None.
    """
    user = message.from_user
    if message.text is None or user is None or user.is_bot:
        return None
    text = message.text
    addressed = _ADDRESSED_COMMAND.match(text)
    if addressed is not None:
        if bot_username is None or addressed[2].lower() != bot_username.lower():
            return None
        text = addressed[1] + text[addressed.end() :]
    replied = message.reply_to_message
    # In a forum, every message of a topic "replies" to the topic's creation.
    if replied is not None and replied.forum_topic_created is not None:
        replied = None
    return StaffUpdate(
        chat_id=message.chat.id,
        user_id=user.id,
        user_name=_display_name(user),
        text=text,
        callback_data=None,
        reply_to=platform_id(replied.chat.id, replied.message_id) if replied else None,
        message_id=platform_id(message.chat.id, message.message_id),
        update_id=update_id,
    )


def staff_update_from_callback_query(update_id: int, query: CallbackQuery) -> StaffUpdate | None:
    """The staff update of a button tap on a post in the staff group, else None."""
    if query.data is None or query.message is None:
        return None
    return StaffUpdate(
        chat_id=query.message.chat.id,
        user_id=query.from_user.id,
        user_name=_display_name(query.from_user),
        text="",
        callback_data=query.data,
        reply_to=None,
        message_id=platform_id(query.message.chat.id, query.message.message_id),
        update_id=update_id,
    )


def _display_name(user: User) -> str:
    return user.first_name or user.username or str(user.id)


def platform_id(chat_id: int, message_id: int) -> str:
    """A message as the staff side names it: ``tg:<chat id>:<message id>``."""
    return f"tg:{chat_id}:{message_id}"


def kind_of(data: dict[str, Any]) -> str:
    """What kind of update a webhook's JSON object is (``edited_message``, ``poll``…),
    for the log: never its content."""
    return next((key for key in data if key != "update_id"), "empty")[:40]
