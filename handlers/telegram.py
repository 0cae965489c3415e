"""The Telegram channel: Bot API updates (webhook or polling) <-> neutral messages.

Each update is translated (``handlers.telegram_updates``) and dispatched here: to the
receiver (a beneficiary's message or tap), to ``on_staff`` (the staff group, whose posts
``handlers.telegram_staff`` makes), to the ``/whoami`` answer, or to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError, TimedOut

from flows.render import as_plain_text
from flows.types import Address, Choice, Media, OutboundMessage
from handlers.base import (
    MAX_MEDIA_BYTES,
    BadBody,
    BeforePart,
    Capabilities,
    ChannelSetup,
    ChannelSpec,
    DeliveryError,
    MediaError,
    Receiver,
    Sent,
    StaffReceiver,
    parse_json,
    read_body,
    store,
)
from handlers.telegram_http import (
    CONNECT_TIMEOUT,
    MAX_CALLBACK_DATA_BYTES,
    MAX_MESSAGE_LENGTH,
    READ_TIMEOUT,
    describe,
    make_bot,
    send_text,
)
from handlers.telegram_staff import TelegramStaffGroup, answer_whoami, whoami_text
from handlers.telegram_updates import (
    ALLOWED_UPDATES,
    CHANNEL,
    FILE_PREFIX,
    ForFlows,
    ForStaff,
    Ignored,
    Malformed,
    StaffGroupMoved,
    Translated,
    WhoAmI,
    kind_of,
    parse_update,
    plain_text,
    translate,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
INLINE_ROW_SIZE = 5
# Real updates are a few kilobytes; anything near this is not from Telegram.
MAX_UPDATE_BYTES = 1024 * 1024
# How long one getUpdates call waits for an update when polling (as PTB's own poller).
POLL_SECONDS = 10
# After a failed getUpdates, polling waits this long, then twice as long each time.
POLL_RETRY_SECONDS = (1.0, 60.0)
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
        staff_chat_id: the staff group (a negative id): ``staff_group`` posts there, and
            its text messages, commands, replies and button taps go to ``on_staff``
            instead of the beneficiaries' path. With the bot's privacy mode on (the
            default), Telegram only delivers commands and replies to the bot's posts.
        on_staff: receives the staff group's updates; without it they are ignored.
        whoami: the answer to ``/whoami`` in a group, from its chat id and the sender's
            user id (``telegram_staff.whoami_text``); without it ``/whoami`` is not answered.
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
        if webhook_secret is not None and not _SECRET_TOKEN.fullmatch(webhook_secret):
            raise ValueError(
                "telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        self._bot = make_bot(token, api_base_url, read_timeout=read_timeout)
        self.staff_group = (
            TelegramStaffGroup(self._bot, staff_chat_id) if staff_chat_id is not None else None
        )
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._webhook_secret = webhook_secret
        self._public_url = public_url
        self._polling = polling
        self._polling_receive: Receiver | None = None
        self._poller: asyncio.Task[None] | None = None
        # getUpdates' offset: updates below it are handled; Telegram forgets them once a
        # call names it.
        self._offset: int | None = None
        self._confirmed: int | None = None
        self._on_staff = on_staff
        self._whoami = whoami
        self._started = False
        self._capabilities = replace(
            CAPABILITIES,
            per_second=messages_per_second,
            per_chat_per_second=messages_per_chat_per_second,
        )
        # Files are downloaded from here only (see fetch_media).
        self._file_url = f"{api_base_url.rstrip('/')}/file/bot{token}/"

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
            log.info("telegram update %s ignored: %s", data["update_id"], kind_of(data))
            return web.Response(status=200)
        update_id: int = data["update_id"]
        if not self._started:
            # Telegram sends it again later; by then start() has succeeded, one hopes.
            log.error("telegram update %s arrived before the channel started", update_id)
            return web.Response(status=503, text="not ready")
        try:
            translated = plain_text(data) or self._translate(parse_update(data))
        except Malformed as error:
            log.warning("telegram webhook: malformed update (%s)", error)
            return web.Response(status=400, text="malformed update")
        # Answered 5xx when not stored (503 when busy), so that Telegram sends it again.
        work = self._dispatch(update_id, translated, receive)
        await store(work, f"telegram update {update_id}")
        return web.Response(status=200)

    def _translate(self, update: Update) -> Translated:
        staff = self.staff_group if self._on_staff is not None else None
        return translate(
            update,
            now=datetime.now(UTC),
            staff_chat_id=staff.chat_id if staff is not None else None,
            bot_username=self._bot.username,
            whoami=self._whoami is not None,
        )

    async def _dispatch(self, update_id: int, translated: Translated, receive: Receiver) -> None:
        """Hand an update to whoever it is for; raises when they could not take it, and
        then leaves a tap unanswered (Telegram sends it again)."""
        match translated:
            case ForFlows(message, query_id):
                await receive(message)
                await self._answer(query_id)
            case ForStaff(staff_update, query_id):
                assert self._on_staff is not None  # translate gives none without it
                await self._on_staff(staff_update)
                await self._answer(query_id)
            case WhoAmI():
                assert self._whoami is not None
                await answer_whoami(self._bot, translated, self._whoami)
            case StaffGroupMoved(new_chat_id):
                log.error(
                    "telegram: the staff group became the supergroup %s; "
                    "set telegram.staff_chat_id to it",
                    new_chat_id,
                )
            case Ignored(why, query_id):
                log.info("telegram update %s ignored: %s", update_id, why)
                await self._answer(query_id)

    async def _answer(self, query_id: str | None) -> None:
        """Stop a tapped button's spinner; the reply itself comes as a message."""
        if query_id is None:
            return
        try:
            await self._bot.answer_callback_query(query_id)
        except TelegramError as error:
            log.warning("telegram: could not answer a callback query (%s)", type(error).__name__)

    async def _poll(self, receive: Receiver) -> None:
        """Fetch updates with getUpdates and dispatch each, until cancelled."""
        retry, most = POLL_RETRY_SECONDS
        while True:
            try:
                updates = await self._bot.get_updates(
                    offset=self._offset,
                    timeout=POLL_SECONDS,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            except TimedOut:
                continue  # a long poll the network cut short: nothing is lost
            except TelegramError as error:
                log.warning("telegram: getUpdates failed (%s)", type(error).__name__)
                await asyncio.sleep(retry)
                retry = min(retry * 2, most)
                continue
            retry = POLL_RETRY_SECONDS[0]
            self._confirmed = self._offset
            for update in updates:
                await self._polled(update, receive)
                self._offset = update.update_id + 1

    async def _polled(self, update: Update, receive: Receiver) -> None:
        # Confirmed by the next getUpdates whatever becomes of it: an update that cannot
        # be stored is lost rather than block every one after it.
        try:
            translated = self._translate(update)
            await self._dispatch(update.update_id, translated, receive)
        except Malformed:
            log.warning("telegram polled update %s ignored: malformed", update.update_id)
        except Exception as error:
            log.error("telegram polled update %s lost (%s)", update.update_id, type(error).__name__)

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
        if not self._started:
            raise DeliveryError("telegram channel not started")
        text = message.text if message.text.strip() else as_plain_text(message)
        sent = await send_text(
            self._bot,
            address.user_id,
            text,
            _keyboard(message),
            first_part=first_part,
            before_part=before_part,
        )
        # Telegram numbers messages per chat: the chat makes the id unique in our log.
        return Sent(f"{address.user_id}:{sent.message_id}")

    async def fetch_media(self, media: Media) -> bytes:
        if not media.url.startswith(FILE_PREFIX) or len(media.url) == len(FILE_PREFIX):
            raise MediaError("not a telegram file reference")
        if not self._started:
            raise MediaError("telegram channel not started")
        try:
            file = await self._bot.get_file(media.url.removeprefix(FILE_PREFIX))
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
            raise MediaError(f"telegram refused the file: {describe(error)}") from error
        except RuntimeError as error:  # no file_path: Telegram will not serve this file
            raise MediaError("telegram gave no download path") from error
        if len(content) > MAX_MEDIA_BYTES:
            raise MediaError(f"attachment over {MAX_MEDIA_BYTES} bytes")
        return bytes(content)

    # Lifecycle

    async def start(self) -> None:
        receive = self._polling_receive
        if self._polling and receive is None:
            raise RuntimeError("call routes(receive) before start() when polling")
        await self._bot.initialize()  # getMe: the bot's username, for addressed commands
        self._started = True
        if self._polling:
            assert receive is not None
            await self._bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll(receive))
            log.info("telegram: polling for updates")
        elif self._public_url:
            if self._webhook_secret is None:
                log.error("telegram webhook not registered: telegram.webhook_secret is not set")
                return
            await self._bot.set_webhook(
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
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
            if self._offset != self._confirmed:
                # What was handled since the last getUpdates is not sent again on restart.
                try:
                    await self._bot.get_updates(offset=self._offset, timeout=0)
                    self._confirmed = self._offset
                except TelegramError as error:
                    log.warning("telegram: last updates not confirmed (%s)", type(error).__name__)
        await self._bot.shutdown()


def _keyboard(message: OutboundMessage) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """Choices as buttons: inline (callback data = payload) or a reply keyboard of labels."""
    choices = message.choices
    if not choices:
        return None
    inline = message.inline
    if inline and not all(0 < len(c.payload.encode()) <= MAX_CALLBACK_DATA_BYTES for c in choices):
        # A tapped reply-keyboard button sends its label, which the flows accept too.
        log.warning("telegram: a choice payload exceeds 64 bytes; sending a reply keyboard")
        inline = False
    return _markup(choices, inline=inline)


# The flows offer the same few choice lists over and over (the menu, yes/no, the
# ratings), and PTB's objects cost more to build than to send: each is built once. They
# are frozen once built, and sending only reads them. A label may be a name the sender
# gave ("for whom"): kept in memory only, as the messages being sent are, and pushed out
# by newer keyboards.
@functools.lru_cache(maxsize=256)
def _markup(
    choices: tuple[Choice, ...], *, inline: bool
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup:
    if inline:
        buttons = [InlineKeyboardButton(c.label, callback_data=c.payload) for c in choices]
        rows = range(0, len(buttons), INLINE_ROW_SIZE)
        return InlineKeyboardMarkup([buttons[start : start + INLINE_ROW_SIZE] for start in rows])
    return ReplyKeyboardMarkup(
        [[KeyboardButton(c.label)] for c in choices],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def build(setup: ChannelSetup) -> TelegramChannel | None:
    """The channel from the ``[telegram]`` section, when it has what it needs."""
    section = setup.section
    if section.token is None:
        log.info("Telegram skipped: telegram.token is not set")
        return None
    if section.webhook_secret is None and not setup.polling:
        log.warning("Telegram skipped: telegram.webhook_secret is needed for the webhook")
        return None
    return TelegramChannel(
        section.token.get_secret_value(),
        webhook_secret=(
            section.webhook_secret.get_secret_value() if section.webhook_secret else None
        ),
        api_base_url=section.api_base_url,
        public_url=setup.public_url,
        polling=setup.polling,
        staff_chat_id=section.staff_chat_id,
        on_staff=setup.on_staff,
        whoami=whoami_text(setup.text),
        messages_per_second=section.messages_per_second,
        messages_per_chat_per_second=section.messages_per_chat_per_second,
    )


SPEC = ChannelSpec(
    names=(CHANNEL,), capabilities={CHANNEL: CAPABILITIES}, section="telegram", build=build
)
