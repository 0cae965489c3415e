"""The staff group on Telegram: posts there (with buttons, in reply to a message) and the
``/whoami`` answer by which an operator learns a group's id."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from handlers.base import DeliveryError, Text
from handlers.telegram_http import MAX_CALLBACK_DATA_BYTES, send_text
from handlers.telegram_updates import WhoAmI, platform_id

log = logging.getLogger(__name__)

# A message as the staff side names it: "tg:<chat id>:<message id>".
_PLATFORM_ID = re.compile(r"tg:(-?[0-9]{1,20}):([0-9]{1,20})")


class TelegramStaffGroup:
    """The staff group's posts, through the channel's Bot API client.

    Args:
        bot: the channel's client (open while the channel is started).
        chat_id: the staff group (a negative id).
    """

    def __init__(self, bot: Bot, chat_id: int) -> None:
        if type(chat_id) is not int or chat_id >= 0:
            # A positive id is a private chat: a beneficiary's messages would reach staff.
            raise ValueError("telegram.staff_chat_id must be a group's id (a negative number)")
        self._bot = bot
        self.chat_id = chat_id

    async def post(
        self,
        text: str,
        *,
        buttons: Sequence[tuple[str, str]] = (),
        reply_to: str | None = None,
    ) -> str:
        """Post to the staff group; the post's id (``tg:<chat>:<message>``, its last part).

        Args:
            text: split like a beneficiary's message when longer than Telegram allows.
            buttons: ``(label, callback_data)`` pairs, one row under the last part; a tap
                comes back as a staff update. callback_data is 1-64 bytes (Arabic: 2 a
                letter).
            reply_to: a staff message or post (``tg:<chat>:<message>``) the post answers;
                the post still goes when that message is gone.

        Raises:
            DeliveryError: Telegram refused it, or a button is bad.
        """
        reply = None
        if reply_to is not None:
            target = _parse_platform_id(reply_to)
            if target is None or target[0] != self.chat_id:
                # A post that answers nothing is better than no post.
                log.warning("telegram: reply_to is not a staff group message; posting without")
            else:
                reply = ReplyParameters(target[1], allow_sending_without_reply=True)
        sent = await send_text(
            self._bot, self.chat_id, text, _inline_buttons(buttons), reply_parameters=reply
        )
        return platform_id(sent.chat_id, sent.message_id)


async def answer_whoami(bot: Bot, asked: WhoAmI, answer: Callable[[int, int], str]) -> None:
    """Tell a group its chat id and the sender their user id, for the configuration; a
    failure is only logged (the operator asks again)."""
    try:
        await send_text(
            bot,
            asked.chat_id,
            answer(asked.chat_id, asked.user_id),
            None,
            reply_parameters=ReplyParameters(asked.message_id, allow_sending_without_reply=True),
            message_thread_id=asked.thread_id,
        )
    except DeliveryError as error:
        log.warning("telegram: /whoami not answered (%s)", error.reason)


def whoami_text(text: Text) -> Callable[[int, int], str]:
    """The answer to ``/whoami`` from the catalogue: the group's id and the sender's, in
    Arabic and English, in Latin digits to paste into the configuration."""

    def answer(chat_id: int, user_id: int) -> str:
        return "\n\n".join(
            text(language, "staff.whoami", chat_id=str(chat_id), user_id=str(user_id))
            for language in ("ar", "en")
        )

    return answer


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
