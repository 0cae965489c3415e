"""The Telegram channel: Bot API updates (webhook or polling) <-> neutral messages."""

from __future__ import annotations

import hmac
import logging
import math
import re
import warnings
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from flows.render import as_plain_text, text_length
from flows.render import split_text as split_within
from flows.types import (
    Address,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
    clean_line,
    clean_text,
)
from handlers.base import (
    MAX_MEDIA_BYTES,
    BadBody,
    BeforePart,
    Capabilities,
    ChannelSpec,
    DeliveryError,
    MediaError,
    Overloaded,
    Receiver,
    Sent,
    busy_response,
    parse_json,
    read_body,
)
from handlers.telegram_http import CONNECT_TIMEOUT, READ_TIMEOUT, AiohttpRequest

log = logging.getLogger(__name__)
# Every Bot API URL carries the token, and PTB logs parameters (message text) at DEBUG:
# keep both out of the logs whatever the root level is.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
logging.getLogger("telegram").setLevel(logging.INFO)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Media references are opaque to the flows; fetch_media turns this one back into a download.
FILE_PREFIX = "tg-file:"
# Telegram counts a message's length in UTF-16 code units.
MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
INLINE_ROW_SIZE = 5
# Real updates are a few kilobytes; anything near this is not from Telegram.
MAX_UPDATE_BYTES = 1024 * 1024
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
# A sticker is never a supporting document, though a static one is a WebP image: a type
# outside image/* lets the flows refuse it like any other media they do not take.
STICKER_CONTENT_TYPE = "application/x-tgsticker"
# Telegram's broadcast limit (paid broadcasts raise it), and one message a second per chat.
MESSAGES_PER_SECOND = 30.0
PER_CHAT_PER_SECOND = 1.0
CAPABILITIES = Capabilities(
    media=frozenset({"image", "document", "audio", "video"}),
    buttons=100,  # a keyboard's buttons in all
    button_label_chars=64,
    text_limit=MAX_MESSAGE_LENGTH,
    utf16=True,
    per_second=MESSAGES_PER_SECOND,
    per_chat_per_second=PER_CHAT_PER_SECOND,
    call_seconds=CONNECT_TIMEOUT + READ_TIMEOUT,
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# "/status@tawasul_bot REQ-1": the command word and the bot it is addressed to.
_ADDRESSED_COMMAND = re.compile(r"(/[A-Za-z0-9_]{1,32})@([A-Za-z0-9_]{1,32})(?=\s|$)")
# A message as the staff side names it: "tg:<chat id>:<message id>".
_PLATFORM_ID = re.compile(r"tg:(-?[0-9]{1,20}):([0-9]{1,20})")

_SUPPORTED_CONTENT = (
    filters.TEXT
    | filters.PHOTO
    | filters.Document.ALL
    | filters.LOCATION
    | filters.CONTACT
    | filters.Sticker.ALL
    | filters.VOICE
    | filters.AUDIO
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.ANIMATION
)
# In any group, also one not yet configured as the staff group: answers its id and the sender's.
WHOAMI = "whoami"
_PRIVATE_MESSAGES = filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & _SUPPORTED_CONTENT


@dataclass(slots=True)
class _WebhookDelivery:
    """One webhook request on its way through PTB: where it goes and what became of it.

    PTB hands a callback's exceptions to its error handlers and returns normally, so the
    callback reports here instead, and the route turns a failure into a 500.
    """

    receive: Receiver
    handled: bool = False
    error: Exception | None = None
    malformed: bool = False


# What translating an update whose fields have the wrong types raises (PTB keeps the
# JSON's types as they came): a malformed update, not a failure to store it.
_MALFORMED = (AttributeError, TypeError, ValueError, KeyError, OverflowError)


_delivery: ContextVar[_WebhookDelivery | None] = ContextVar("telegram_delivery", default=None)


@dataclass(frozen=True, slots=True)
class StaffUpdate:
    """A message or a button tap in the staff group, free of Telegram types.

    Attributes:
        chat_id: the staff group.
        user_id: the Telegram user who wrote or tapped.
        user_name: their first name (else username), for display only.
        text: the message text, a command word without its ``@botname``; "" for a tap.
        callback_data: the tapped button's data, for a tap on one of our staff posts.
        reply_to: the message replied to, as ``tg:<chat>:<message>``, when it is a reply.
        message_id: this message as ``tg:<chat>:<message>``; for a tap, the post that
            carries the button (what ``edit_staff_post`` takes).
        update_id: Telegram's update id (the same when Telegram sends it again).
    """

    chat_id: int
    user_id: int
    user_name: str
    text: str
    callback_data: str | None
    reply_to: str | None
    message_id: str
    update_id: int

    def __post_init__(self) -> None:
        # Staff text is relayed to beneficiaries and kept in the case file: cleaned as
        # a beneficiary's is (flows/cleaning.py).
        object.__setattr__(self, "user_name", clean_line(self.user_name))
        object.__setattr__(self, "text", clean_text(self.text))
        if self.callback_data is not None:
            object.__setattr__(self, "callback_data", clean_line(self.callback_data))


# Given to the channel by the server: handles one staff update, raising when it could not,
# so that the webhook answers 5xx and Telegram sends the update again.
StaffReceiver = Callable[[StaffUpdate], Awaitable[None]]


class TelegramChannel:
    """Translates Telegram updates into neutral messages and neutral messages into Bot API calls.

    Args:
        token: the bot token from BotFather.
        webhook_secret: the ``secret_token`` Telegram echoes in every webhook request; without
            one the webhook refuses every update.
        api_base_url: the Bot API server (a local stand-in in tests, a proxy in production).
        public_url: the server's public base URL; when set (and not polling), ``start``
            registers ``<public_url>/webhooks/telegram`` with Telegram.
        polling: fetch updates with ``getUpdates`` instead (development without a public
            URL); ``routes`` must then be called before ``start``.
        staff_chat_id: the staff group (a negative id); ``post_to_staff`` sends there, and
            its text messages, commands, replies and button taps go to ``on_staff``
            instead of the beneficiaries' path. With the bot's privacy mode on (the
            default), Telegram only delivers commands and replies to the bot's posts.
        on_staff: receives the staff group's updates; without it they are ignored.
        whoami: the answer to ``/whoami`` in a group, from its chat id and the sender's
            user id (the bot words it); without it ``/whoami`` is not answered.
        messages_per_second: the bot's sending limit in all (``telegram.messages_per_second``).
        read_timeout: seconds to wait for the Bot API's answer before a call has timed out
            (a transient failure: the outbox retries it).
        messages_per_chat_per_second: the limit to one chat
            (``telegram.messages_per_chat_per_second``; Telegram's is 1).
    """

    names: tuple[str, ...] = (CHANNEL,)

    def capabilities(self, name: str) -> Capabilities:
        return self._capabilities

    def __init__(
        self,
        token: str,
        *,
        webhook_secret: str | None,
        api_base_url: str = "https://api.telegram.org",
        public_url: str | None = None,
        polling: bool = False,
        staff_chat_id: int | None = None,
        on_staff: StaffReceiver | None = None,
        whoami: Callable[[int, int], str] | None = None,
        messages_per_second: float = MESSAGES_PER_SECOND,
        read_timeout: float = READ_TIMEOUT,
        messages_per_chat_per_second: float = PER_CHAT_PER_SECOND,
    ) -> None:
        if staff_chat_id is not None and (type(staff_chat_id) is not int or staff_chat_id >= 0):
            # A positive id is a private chat: a beneficiary's messages would reach staff.
            raise ValueError("telegram.staff_chat_id must be a group's id (a negative number)")
        if webhook_secret is not None and not _SECRET_TOKEN.fullmatch(webhook_secret):
            raise ValueError(
                "telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._webhook_secret = webhook_secret
        self._public_url = public_url
        self._polling = polling
        self._polling_receive: Receiver | None = None
        self._staff_chat_id = staff_chat_id
        self._on_staff = on_staff
        self._whoami = whoami
        self._started = False
        self._capabilities = replace(
            CAPABILITIES,
            per_second=messages_per_second,
            per_chat_per_second=messages_per_chat_per_second,
        )
        api = api_base_url.rstrip("/")
        # Files are downloaded from here only (see fetch_media).
        self._file_url = f"{api}/file/bot{token}/"
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .request(AiohttpRequest(read_timeout=read_timeout))
            .job_queue(None)
        )
        if not polling:
            builder = builder.updater(None)
        self._application = builder.build()
        if whoami is not None:
            # First, so it answers in the staff group too, and in a group not yet
            # configured: /whoami is how the operator learns telegram.staff_chat_id.
            self._application.add_handler(
                CommandHandler(WHOAMI, self._on_whoami, filters=filters.ChatType.GROUPS)
            )
        if staff_chat_id is not None and on_staff is not None:
            staff_messages = (
                filters.UpdateType.MESSAGE
                & filters.Chat(chat_id=staff_chat_id)
                & (filters.TEXT | filters.StatusUpdate.MIGRATE)
            )
            self._application.add_handler(MessageHandler(staff_messages, self._on_staff_message))
        self._application.add_handler(MessageHandler(_PRIVATE_MESSAGES, self._on_message))
        self._application.add_handler(CallbackQueryHandler(self._on_callback_query))
        self._application.add_error_handler(self._on_error)

    # Inbound

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        self._polling_receive = receive
        if self._secret is None and not self._polling:
            log.warning("telegram webhook refuses every update: telegram.webhook_secret is not set")

        async def webhook(request: web.Request) -> web.StreamResponse:
            return await self._webhook(request, receive)

        return [web.post(WEBHOOK_PATH, webhook)]

    async def _webhook(self, request: web.Request, receive: Receiver) -> web.StreamResponse:
        header = request.headers.get(SECRET_HEADER, "").encode()
        if self._secret is None or not hmac.compare_digest(header, self._secret):
            log.warning("telegram webhook: refused a request without the right secret token")
            return web.Response(status=403, text="forbidden")
        try:
            data = parse_json(await read_body(request, MAX_UPDATE_BYTES))
        except BadBody as error:
            return web.Response(status=error.status, text=error.reason)
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            return web.Response(status=400, text="not an update")
        if not any(kind in data for kind in ALLOWED_UPDATES):
            # Not parsed at all: a kind we never asked for need not match this PTB's model.
            log.info("telegram update %s ignored: %s", data["update_id"], _kind_of(data))
            return web.Response(status=200)
        try:
            update = Update.de_json(data, self._application.bot)
        except Exception as error:
            log.warning("telegram webhook: malformed update (%s)", type(error).__name__)
            return web.Response(status=400, text="malformed update")
        if not self._started:
            # Telegram sends it again later; by then start() has succeeded, one hopes.
            log.error("telegram update %s arrived before the channel started", update.update_id)
            return web.Response(status=503, text="not ready")

        delivery = _WebhookDelivery(receive)
        token = _delivery.set(delivery)
        try:
            await self._application.process_update(update)
        except _MALFORMED:  # a filter choked on a field of the wrong type
            delivery.malformed = True
        finally:
            _delivery.reset(token)
        if delivery.malformed:
            log.warning("telegram webhook: malformed update %s", update.update_id)
            return web.Response(status=400, text="malformed update")
        if isinstance(delivery.error, Overloaded):
            return busy_response(delivery.error)  # Telegram sends it again later
        if delivery.error is not None:
            log.error(
                "telegram update %s not stored (%s): answering 500 so Telegram sends it again",
                update.update_id,
                type(delivery.error).__name__,
            )
            return web.Response(status=500, text="not stored")
        if not delivery.handled:
            log.info("telegram update %s ignored: %s", update.update_id, _kind_of(data))
        return web.Response(status=200)

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is None:
            return
        try:
            message = inbound_from_message(update.update_id, update.message)
        except _MALFORMED:
            _report_malformed()
            return
        if message is not None:
            await self._deliver(message)

    async def _on_callback_query(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat = query.message.chat if query.message is not None else None
        try:
            if chat is not None and chat.id == self._staff_chat_id and self._on_staff is not None:
                staff_update = staff_update_from_callback_query(update.update_id, query)
                if staff_update is None or await self._deliver_to_staff(staff_update):
                    await _answer(query)
                return
            message = inbound_from_callback_query(update.update_id, query, datetime.now(UTC))
        except _MALFORMED:
            _report_malformed()
            return
        if message is None or await self._deliver(message):
            await _answer(query)

    async def _on_whoami(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tell a group its chat id and the sender their user id, for the configuration."""
        message, user = update.message, update.effective_user
        if message is None or user is None or self._whoami is None:
            return
        delivery = _delivery.get()
        if delivery is not None:
            delivery.handled = True
        try:
            await message.reply_text(self._whoami(message.chat.id, user.id))
        except TelegramError as error:
            # Nothing is lost: the operator sends /whoami again.
            log.warning("telegram: /whoami not answered (%s)", type(error).__name__)

    async def _on_staff_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            log.error(
                "telegram: the staff group became the supergroup %s; "
                "set telegram.staff_chat_id to it",
                message.migrate_to_chat_id,
            )
            return
        try:
            staff_update = staff_update_from_message(
                update.update_id, message, self._application.bot.username
            )
        except _MALFORMED:
            _report_malformed()
            return
        if staff_update is not None:
            await self._deliver_to_staff(staff_update)

    async def _deliver(self, message: InboundMessage) -> bool:
        """Hand the message to the receiver; whether it was stored."""
        delivery = _delivery.get()
        receive = delivery.receive if delivery is not None else self._polling_receive
        if receive is None:
            log.error("telegram update dropped: routes() was never called")
            return False
        return await self._settle(delivery, receive(message))

    async def _deliver_to_staff(self, update: StaffUpdate) -> bool:
        """Hand the staff update to ``on_staff``; whether it was handled."""
        assert self._on_staff is not None
        return await self._settle(_delivery.get(), self._on_staff(update))

    @staticmethod
    async def _settle(delivery: _WebhookDelivery | None, work: Awaitable[None]) -> bool:
        """Await the receiver's work and report its failure to the webhook route."""
        if delivery is None:  # polling: the update is confirmed already, it cannot come back
            try:
                await work
            except Exception as error:
                log.error("telegram polled update lost (%s)", type(error).__name__)
                return False
            return True
        delivery.handled = True
        try:
            await work
        except Exception as error:
            delivery.error = error
            return False
        return True

    async def _on_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Only the type: a library error's text may quote the update.
        log.error("telegram handler error: %s", type(context.error).__name__)

    # Outbound

    async def send(
        self,
        address: Address,
        message: OutboundMessage,
        *,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Sent:
        if address.channel != CHANNEL:
            raise DeliveryError(f"not a telegram address: {address.channel}", permanent=True)
        text = message.text if message.text.strip() else as_plain_text(message)
        sent = await self._send_text(
            address.user_id,
            text,
            _keyboard(message),
            first_part=first_part,
            before_part=before_part,
        )
        # Telegram numbers messages per chat: the chat makes the id unique in our log.
        return Sent(f"{address.user_id}:{sent.message_id}")

    async def post_to_staff(
        self,
        text: str,
        *,
        buttons: Sequence[tuple[str, str]] = (),
        reply_to: str | None = None,
    ) -> str:
        """Post to the staff group; the post's id (``tg:<chat>:<message>``, its last part).

        Args:
            text: split like ``send`` when longer than Telegram allows.
            buttons: ``(label, callback_data)`` pairs, one row under the last part; a tap
                comes back to ``on_staff``. callback_data is 1-64 bytes (Arabic: 2 a letter).
            reply_to: a staff message or post (``tg:<chat>:<message>``) the post answers;
                the post still goes when that message is gone.

        Raises:
            DeliveryError: Telegram refused it, or there is no staff group or bad buttons.
        """
        if self._staff_chat_id is None:
            raise DeliveryError("telegram.staff_chat_id is not set", permanent=True)
        reply = None
        if reply_to is not None:
            target = _parse_platform_id(reply_to)
            if target is None or target[0] != self._staff_chat_id:
                # A post that answers nothing is better than no post.
                log.warning("telegram: reply_to is not a staff group message; posting without")
            else:
                reply = ReplyParameters(target[1], allow_sending_without_reply=True)
        sent = await self._send_text(
            self._staff_chat_id, text, _inline_buttons(buttons), reply_parameters=reply
        )
        return _platform_id(sent)

    async def edit_staff_post(
        self, platform_id: str, text: str, *, buttons: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Replace a post's text and buttons (no buttons removes them).

        Text beyond Telegram's limit is cut, since one post cannot be split. Editing to
        what the post already says is no error.

        Raises:
            DeliveryError: Telegram refused it (the post is gone, say) or a bad id or button.
        """
        target = _parse_platform_id(platform_id)
        if target is None:
            raise DeliveryError("not a telegram message id", permanent=True)
        markup = _inline_buttons(buttons)
        if not text.strip():
            raise DeliveryError("empty message", permanent=True)
        if not self._started:
            raise DeliveryError("telegram channel not started")
        if _utf16_length(text) > MAX_MESSAGE_LENGTH:
            text = _prefix_within(text, MAX_MESSAGE_LENGTH - 1) + "…"
        try:
            await self._application.bot.edit_message_text(
                text, chat_id=target[0], message_id=target[1], reply_markup=markup
            )
        except BadRequest as error:
            if "message is not modified" in error.message.lower():
                return
            raise _delivery_error(error) from error
        except TelegramError as error:
            raise _delivery_error(error) from error

    async def send_private(self, user_id: int, text: str) -> str:
        """Message a staff member in their private chat with the bot; the message's id.

        Raises:
            DeliveryError: unreachable when they never started a chat with the bot or
                blocked it; otherwise as ``send``.
        """
        if type(user_id) is not int or user_id <= 0:
            raise DeliveryError("not a telegram user id", permanent=True)
        return _platform_id(await self._send_text(user_id, text, None))

    async def _send_text(
        self,
        chat_id: int | str,
        text: str,
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None,
        *,
        reply_parameters: ReplyParameters | None = None,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Message:
        """Send ``text`` in parts, the markup on the last and the reply on the first; from
        ``first_part`` on (see ``Channel.send``)."""
        if not self._started:
            raise DeliveryError("telegram channel not started")
        chunks = split_text(text)
        if not chunks:
            raise DeliveryError("empty message", permanent=True)
        sent: Message | None = None
        for number, chunk in enumerate(chunks, start=1):
            if number <= first_part:
                continue
            if number > first_part + 1 and before_part is not None:
                await before_part(number - 1)
            try:
                sent = await self._application.bot.send_message(
                    chat_id=chat_id,
                    text=chunk,
                    reply_markup=markup if number == len(chunks) else None,
                    reply_parameters=reply_parameters if number == 1 else None,
                )
            except TelegramError as error:
                raise _delivery_error(error) from error
        if sent is None:  # every part went in an earlier call
            raise DeliveryError("no part left to send", permanent=True)
        return sent

    async def fetch_media(self, media: Media) -> bytes:
        if not media.url.startswith(FILE_PREFIX) or len(media.url) == len(FILE_PREFIX):
            raise MediaError("not a telegram file reference")
        if not self._started:
            raise MediaError("telegram channel not started")
        try:
            file = await self._application.bot.get_file(media.url.removeprefix(FILE_PREFIX))
            if file.file_size is not None and file.file_size > MAX_MEDIA_BYTES:
                raise MediaError(f"attachment over {MAX_MEDIA_BYTES} bytes")
            # python-telegram-bot reads a file_path naming a local file from the disk, and
            # downloads an absolute URL from wherever it points: only our Bot API's files.
            path = file.file_path or ""
            relative = path.removeprefix(self._file_url)
            if path == relative or not relative or ".." in relative.split("/"):
                raise MediaError("telegram file path outside the configured Bot API")
            content = await file.download_as_bytearray()
        except TelegramError as error:
            raise MediaError(f"telegram refused the file: {_describe(error)}") from error
        except RuntimeError as error:  # no file_path: Telegram will not serve this file
            raise MediaError("telegram gave no download path") from error
        if len(content) > MAX_MEDIA_BYTES:
            raise MediaError(f"attachment over {MAX_MEDIA_BYTES} bytes")
        return bytes(content)

    # Lifecycle

    async def start(self) -> None:
        if self._polling and self._polling_receive is None:
            raise RuntimeError("call routes(receive) before start() when polling")
        application = self._application
        await application.initialize()
        await application.start()
        self._started = True
        if self._polling:
            assert application.updater is not None
            await application.updater.start_polling(
                allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False
            )
            log.info("telegram: polling for updates")
        elif self._public_url:
            if self._webhook_secret is None:
                log.error("telegram webhook not registered: telegram.webhook_secret is not set")
                return
            await application.bot.set_webhook(
                url=self._public_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=self._webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=False,
            )
            log.info("telegram: webhook registered")

    async def stop(self) -> None:
        # The webhook stays registered: Telegram keeps the updates of a restart for us, and
        # deleting it would race with a new instance that has just set it.
        self._started = False
        application = self._application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    @property
    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The python-telegram-bot application (for staff features built on the same bot)."""
        return self._application


def _report_malformed() -> None:
    delivery = _delivery.get()
    if delivery is not None:
        delivery.malformed = True  # the route answers 400
    else:
        log.warning("telegram polled update ignored: malformed")


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

    A command addressed to another bot (``/status@other_bot``) is not ours: None.
    """
    user = message.from_user
    if message.text is None or user is None:
        return None
    if user.is_bot:
        # Another bot, or an admin writing anonymously as the group: nobody to name.
        log.info("telegram staff update %s ignored: sent by a bot or anonymously", update_id)
        return None
    text = message.text
    addressed = _ADDRESSED_COMMAND.match(text)
    if addressed is not None:
        if bot_username is None or addressed[2].lower() != bot_username.lower():
            log.info("telegram staff update %s ignored: a command for another bot", update_id)
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
        reply_to=_platform_id(replied) if replied is not None else None,
        message_id=_platform_id(message),
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
        message_id=f"tg:{query.message.chat.id}:{query.message.message_id}",
        update_id=update_id,
    )


def _display_name(user: User) -> str:
    return user.first_name or user.username or str(user.id)


def _platform_id(message: Message) -> str:
    return f"tg:{message.chat.id}:{message.message_id}"


def _parse_platform_id(platform_id: str) -> tuple[int, int] | None:
    """``(chat id, message id)`` of a ``tg:<chat>:<message>`` id, else None."""
    match = _PLATFORM_ID.fullmatch(platform_id)
    return (int(match[1]), int(match[2])) if match else None


def _inline_buttons(buttons: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """Staff buttons, one row; a caller's bad button is refused before anything is sent."""
    if not buttons:
        return None
    for label, data in buttons:
        if not label.strip() or not 0 < len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise DeliveryError(
                f"a button needs a label and 1-{MAX_CALLBACK_DATA_BYTES} bytes of data",
                permanent=True,
            )
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in buttons]]
    )


async def _answer(query: CallbackQuery) -> None:
    """Stop the button's spinner; the reply itself comes as a message."""
    try:
        await query.answer()
    except TelegramError as error:
        log.warning("telegram: could not answer a callback query (%s)", type(error).__name__)


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` in messages Telegram takes: at most ``limit`` UTF-16 units each."""
    return split_within(text, limit, utf16=True)


def _utf16_length(text: str) -> int:
    return text_length(text, utf16=True)


def _prefix_within(text: str, limit: int) -> str:
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _keyboard(message: OutboundMessage) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """Choices as buttons: inline (callback data = payload) or a reply keyboard of labels."""
    choices = message.choices
    if not choices:
        return None
    if message.inline:
        if all(0 < len(c.payload.encode()) <= MAX_CALLBACK_DATA_BYTES for c in choices):
            buttons = [InlineKeyboardButton(c.label, callback_data=c.payload) for c in choices]
            return InlineKeyboardMarkup(
                [
                    buttons[start : start + INLINE_ROW_SIZE]
                    for start in range(0, len(buttons), INLINE_ROW_SIZE)
                ]
            )
        # A tapped reply-keyboard button sends its label, which the flows accept too.
        log.warning("telegram: a choice payload exceeds 64 bytes; sending a reply keyboard")
    return ReplyKeyboardMarkup(
        [[KeyboardButton(c.label)] for c in choices],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _delivery_error(error: TelegramError) -> DeliveryError:
    if isinstance(error, Forbidden):
        return DeliveryError(f"403 {_describe(error)}", unreachable=True, code="403")
    if isinstance(error, RetryAfter):
        seconds = _retry_after_seconds(error)
        return DeliveryError(
            f"429 flood control, retry in {seconds:g}s", retry_after=seconds, code="429"
        )
    if isinstance(error, BadRequest):
        return DeliveryError(f"400 {_describe(error)}", permanent=True, code="400")
    if isinstance(error, ChatMigrated):  # a group's id (not personal data) to configure
        return DeliveryError(
            f"400 group became the supergroup {error.new_chat_id}", permanent=True, code="400"
        )
    if isinstance(error, NetworkError):  # TimedOut included
        return DeliveryError(f"network: {type(error).__name__}")
    return DeliveryError(f"telegram: {type(error).__name__}")


def _retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 warns on reading it as a number; it becomes a timedelta in the next major.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _describe(error: TelegramError) -> str:
    """Telegram's own description of an API error (never personal data), else the type."""
    if isinstance(error, BadRequest | Forbidden):
        return error.message[:120]
    return type(error).__name__


def _kind_of(data: dict[str, Any]) -> str:
    """What kind of update this is, for the log: never its content."""
    kind = next((key for key in data if key != "update_id"), "empty")[:40]
    body = data.get(kind)
    if kind == "message" and isinstance(body, dict):
        chat = body.get("chat")
        chat_type = chat.get("type") if isinstance(chat, dict) else None
        if chat_type != ChatType.PRIVATE:
            return f"message in a {str(chat_type)[:20]} chat"
        return "message with unsupported content"
    if kind == "callback_query":
        return "callback query without data or outside a private chat"
    return kind


# Built by the server, which gives it the staff group's hooks and polling.
SPEC = ChannelSpec(names=(CHANNEL,), capabilities={CHANNEL: CAPABILITIES})
