"""The usual way: the beneficiary's Telegram conversation as a python-telegram-bot
``ConversationHandler`` with its built-in ``PicklePersistence``, left at its defaults.

By default PTB keeps every conversation in memory and writes them to its pickle file
every 60 s (``--flush-interval`` changes that, so that a short measured window still
includes flushes): a crash loses what changed since the last flush.
``--persist-every-update`` writes the pickle after every update instead, the durability
Tawasul gives (it stores each message, state and reply before acknowledging).

The same steps, validation and Arabic texts as Tawasul's flows (menu, intake, status,
rating, handoff), one reply per message. Updates arrive by webhook through a small
aiohttp app that queues them for the ``Application``, as in PTB's "customwebhookbot"
example; the bot talks to the Bot API at ``--api-base-url``.

    python -m bench.ptb_baseline --port 8082 --token 1:T --webhook-secret S \\
        --api-base-url http://127.0.0.1:8090 --data-dir /tmp/ptb [--flush-interval 60] \\
        [--persist-every-update]

Conversation (states are the strings below)::

    entry --> menu
    menu --1--> continue_or_restart (a draft exists), consent (not yet agreed) or name
    consent --agree--> name; --decline--> menu
    name --> national_id --> mobile --> city --> need --> description --> documents
    documents --تم--> summary --نعم--> menu (REQ-… reference)
    summary --field number--> that field --> summary
    menu --2--> menu (the sender's requests)
    menu --3--> rating_score --> rating_comment --> menu
    menu --4--> END (staff will answer)
    any state --0 / القائمة / greeting / /start--> menu
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from telegram import KeyboardButton, Message, ReplyKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    TypeHandler,
    filters,
)

from flows.catalogue import DEFAULT_NEEDS, text
from flows.dates import format_date, period
from flows.hours import DEFAULT_WORKING_HOURS
from flows.hours import describe as describe_hours
from flows.intake import kept_for
from flows.text import localize_digits, phrase
from flows.validation import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    Invalid,
    check_city,
    check_description,
    check_mobile,
    check_name,
    check_national_id,
    local_mobile,
    mask_national_id,
)
from flows.vocabulary import (
    CONTINUE,
    DOCUMENTS_DONE,
    GREETINGS,
    MENU_WORDS,
    NO,
    RESTART,
    SALAM_WORDS,
    SIGN,
    SKIP,
    THANKS,
    YES,
)

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Callback = Callable[[Update, Context], Coroutine[Any, Any, str | int]]

ORGANIZATION = "جمعية تواصل الخيرية"
# PicklePersistence's own default: the Application writes it every minute.
DEFAULT_FLUSH_SECONDS = 60.0
TIMEZONE = "Asia/Riyadh"
DECISION_DAYS = 14
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

MENU, CONTINUE_OR_RESTART, SUMMARY = "menu", "continue_or_restart", "summary"
CONSENT = "consent"
RATING_SCORE, RATING_COMMENT = "rating_score", "rating_comment"
# Intake questions in order; the summary numbers its lines the same way.
FIELDS: Final = ("name", "national_id", "mobile", "city", "need", "description", "documents")
TOTAL_STEPS = 8
MAX_DOCUMENTS = 5
MAX_SHOWN = 5
COMMENT_MAX = 1000
LOW_SCORE = 2
STAFF_OFFER_AFTER = 3
MISUNDERSTOOD_LIMIT = 2

CHECKS: Final[dict[str, Callable[[str], str | Invalid]]] = {
    "name": check_name,
    "national_id": check_national_id,
    "mobile": check_mobile,
    "city": check_city,
    "description": check_description,
}


def say(key: str, **params: object) -> str:
    """Tawasul's Arabic catalogue sentence ``key``."""
    return text("ar", key, **params)


def keyboard(labels: Sequence[str]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(label)] for label in labels], resize_keyboard=True, one_time_keyboard=True
    )


MENU_LABELS: Final = tuple(
    say(f"menu.option.{option}") for option in ("intake", "status", "rating", "handoff")
)
NEED_LABELS: Final = tuple(need.label("ar") for need in DEFAULT_NEEDS)
NEED_BY_KEY: Final = {need.key: need.label("ar") for need in DEFAULT_NEEDS}
CONTINUE_LABELS: Final = (say("intake.choice.continue"), say("intake.choice.restart"))
CONSENT_LABELS: Final = (say("privacy.choice.agree"), say("privacy.choice.decline"))
# The privacy notice Tawasul asks by default before a first intake (its built-in text).
NOTICE: Final = "\n".join(
    (
        say("privacy.notice", organization=ORGANIZATION, kept=kept_for("ar", 5 * 365)),
        say("privacy.ask"),
    )
)
SCORE_LABELS: Final = tuple(say(f"rating.score.{n}") for n in range(1, 6))


class Said(filters.MessageFilter):
    """A text message that is, once folded like Tawasul folds it, one of ``phrases``."""

    def __init__(self, *phrases: frozenset[str]) -> None:
        super().__init__(name="Said")
        self.phrases = frozenset().union(*phrases)

    def filter(self, message: Message) -> bool:
        return message.text is not None and phrase(message.text) in self.phrases


# Words that leave any step for the menu; step handlers must not take them as answers.
BACK_TO_MENU: Final = Said(MENU_WORDS, GREETINGS)
ANSWER: Final = filters.TEXT & ~filters.COMMAND & ~BACK_TO_MENU
ATTACHMENT: Final = filters.PHOTO | filters.Document.IMAGE | filters.Document.PDF


# --- helpers ---


def user_data(context: Context) -> dict[Any, Any]:
    data = context.user_data
    if data is None:
        raise RuntimeError("an update without a user")
    return data


def draft_of(context: Context) -> dict[str, Any]:
    draft: dict[str, Any] = user_data(context).setdefault("draft", {})
    return draft


def said(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message is not None else ""


def number_in(update: Update, highest: int) -> int | None:
    """A number from 1 to ``highest`` (any digit form) when that is the whole message."""
    folded = phrase(said(update))
    if folded.isascii() and folded.isdigit() and 1 <= int(folded) <= highest:
        return int(folded)
    return None


def chosen(update: Update, labels: Sequence[str]) -> int | None:
    """The 1-based option meant by a number or a label, else None."""
    number = number_in(update, len(labels))
    if number is not None:
        return number
    folded = phrase(said(update))
    return next((n for n, label in enumerate(labels, 1) if folded == phrase(label)), None)


async def reply(update: Update, body: str, markup: ReplyKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is None:
        raise RuntimeError("an update without a message")
    await message.reply_text(body, reply_markup=markup)


async def refuse(
    update: Update,
    context: Context,
    state: str,
    reason: Invalid,
    markup: ReplyKeyboardMarkup | None = None,
) -> str:
    """Stay on ``state`` and say why; from the third refusal in a row, offer a person."""
    refused = user_data(context).get("bad_answers", 0) + 1
    user_data(context)["bad_answers"] = refused
    body = say(reason.key, **reason.params)
    if refused >= STAFF_OFFER_AFTER:
        body += "\n" + say("common.staff_offer", keyword="موظف")
    await reply(update, body, markup)
    return state


# --- menu ---


async def welcome(update: Update, context: Context) -> str:
    """First contact, ``/start`` or a greeting: the menu with the organisation's name."""
    return await show_menu(update, context, welcome=True)


async def back_to_menu(update: Update, context: Context) -> str:
    return await show_menu(update, context, welcome=phrase(said(update)) in GREETINGS)


async def show_menu(update: Update, context: Context, *, welcome: bool) -> str:
    data = user_data(context)
    data["misunderstood"] = data["bad_answers"] = 0
    lines = [say("menu.draft_kept")] if data.get("draft") else []
    body = say("menu.welcome", organization=ORGANIZATION) if welcome else say("menu.main")
    salam = SALAM_WORDS.intersection(phrase(said(update)).split())
    lines.append(f"{say('menu.salam')} {body}" if salam else body)
    await reply(update, "\n".join(lines), keyboard(MENU_LABELS))
    return MENU


async def first_contact(update: Update, context: Context) -> str | int:
    """A menu number acts at once; anything else is welcomed with the menu."""
    if chosen(update, MENU_LABELS):
        return await choose(update, context)
    return await welcome(update, context)


async def choose(update: Update, context: Context) -> str | int:
    data = user_data(context)
    option = chosen(update, MENU_LABELS)
    if option is None:
        if phrase(said(update)) in THANKS:
            await reply(update, say("common.thanks_reply"))
            return MENU
        data["misunderstood"] = data.get("misunderstood", 0) + 1
        if data["misunderstood"] >= MISUNDERSTOOD_LIMIT:
            return await handoff(update, context, lead=say("handoff.misunderstood"))
        await reply(update, say("menu.misunderstood"), keyboard(MENU_LABELS))
        return MENU
    data["misunderstood"] = 0
    options: tuple[Callback, ...] = (start_intake, show_status, start_rating, handoff)
    return await options[option - 1](update, context)


async def handoff(update: Update, context: Context, lead: str | None = None) -> int:
    body = say("handoff.opened", hours=describe_hours(DEFAULT_WORKING_HOURS, "ar"))
    await reply(update, f"{lead}\n{body}" if lead else body)
    return ConversationHandler.END


# --- intake ---


def next_step(draft: dict[str, Any]) -> str:
    """The first question still unanswered, else the summary."""
    missing = next((field for field in FIELDS[:-1] if not draft.get(field)), None)
    if missing:
        return missing
    return SUMMARY if draft.get("documents_done") else "documents"


def question(step: str, draft: dict[str, Any]) -> tuple[str, ReplyKeyboardMarkup | None]:
    """The prompt of an intake step, numbered "(n/8)", with its keyboard."""
    number = FIELDS.index(step) + 1 if step in FIELDS else TOTAL_STEPS
    counter = say("intake.counter", step=number, total=TOTAL_STEPS)
    if step == "need":
        return f"{counter} {say('intake.ask.need')}", keyboard(NEED_LABELS)
    if step == "description":
        asked = say("intake.ask.description", min=DESCRIPTION_MIN, max=DESCRIPTION_MAX)
        return f"{counter} {asked}", None
    if step == "documents":
        return f"{counter} {say('intake.ask.documents', max=MAX_DOCUMENTS)}", None
    if step == SUMMARY:
        lines = [f"{counter} {say('intake.summary.title')}"]
        for line, field in enumerate(FIELDS, 1):
            label = say(f"intake.field.{field}")
            lines.append(
                say("intake.summary.line", number=line, label=label, value=shown(field, draft))
            )
        lines.append(say("intake.declaration"))
        return "\n".join(lines), None
    return f"{counter} {say(f'intake.ask.{step}')}", None


def shown(field: str, draft: dict[str, Any]) -> str:
    """A field as the summary shows it: ID masked, phone local, need by label."""
    value = draft.get(field)
    if field == "documents":
        count = len(value or [])
        return localize_digits(str(count), "ar") if count else say("intake.summary.no_documents")
    if field == "national_id":
        return mask_national_id(str(value))
    if field == "mobile":
        return localize_digits(local_mobile(str(value)), "ar")
    if field == "need":
        return NEED_BY_KEY[str(value)]
    return str(value)


async def ask_next(update: Update, context: Context, lead: str | None = None) -> str:
    data = user_data(context)
    data["bad_answers"] = 0
    step = next_step(data["draft"])
    body, markup = question(step, data["draft"])
    await reply(update, f"{lead}\n{body}" if lead else body, markup)
    return step


async def start_intake(update: Update, context: Context) -> str:
    """Menu option 1: a new intake, or "continue or start over" when a draft exists."""
    if draft_of(context):
        await reply(update, say("intake.ask.continue"), keyboard(CONTINUE_LABELS))
        return CONTINUE_OR_RESTART
    if not user_data(context).get("consent"):
        await reply(update, NOTICE, keyboard(CONSENT_LABELS))
        return CONSENT
    return await begin_intake(update, context)


async def answer_consent(update: Update, context: Context) -> str:
    """Agreed: kept, and the intake begins; declined: back to the menu, nothing kept."""
    option, folded = chosen(update, CONSENT_LABELS), phrase(said(update))
    if option == 1 or folded in YES or folded in SIGN:
        user_data(context)["consent"] = datetime.now(UTC).isoformat()
        return await begin_intake(update, context)
    if option == 2 or folded in NO:
        await reply(update, say("privacy.declined"), keyboard(MENU_LABELS))
        return MENU
    invalid = Invalid("privacy.invalid")
    return await refuse(update, context, CONSENT, invalid, keyboard(CONSENT_LABELS))


async def begin_intake(update: Update, context: Context) -> str:
    user_data(context)["draft"] = {}
    return await ask_next(update, context, lead=say("intake.intro", total=TOTAL_STEPS))


async def continue_or_restart(update: Update, context: Context) -> str:
    option, folded = chosen(update, CONTINUE_LABELS), phrase(said(update))
    if option == 1 or folded in CONTINUE:
        return await ask_next(update, context)
    if option == 2 or folded in RESTART:
        return await begin_intake(update, context)
    invalid = Invalid("intake.invalid.continue")
    return await refuse(update, context, CONTINUE_OR_RESTART, invalid, keyboard(CONTINUE_LABELS))


def answer_field(field: str) -> Callback:
    """The handler of a free-text intake question, checked as Tawasul checks it."""
    check = CHECKS[field]

    async def answer(update: Update, context: Context) -> str:
        checked = check(said(update))
        if isinstance(checked, Invalid):
            return await refuse(update, context, field, checked)
        draft_of(context)[field] = checked
        return await ask_next(update, context)

    return answer


async def answer_need(update: Update, context: Context) -> str:
    option = chosen(update, NEED_LABELS)
    if option is None:
        invalid = Invalid("intake.invalid.need", {"count": len(NEED_LABELS)})
        return await refuse(update, context, "need", invalid, keyboard(NEED_LABELS))
    draft_of(context)["need"] = DEFAULT_NEEDS[option - 1].key
    return await ask_next(update, context)


async def add_document(update: Update, context: Context) -> str:
    """A photo or PDF: keep its file id, up to the limit."""
    message = update.effective_message
    if message is None:
        raise RuntimeError("an update without a message")
    documents: list[str] = draft_of(context).setdefault("documents", [])
    if len(documents) >= MAX_DOCUMENTS:
        return await refuse(
            update,
            context,
            "documents",
            Invalid("intake.invalid.document_limit", {"max": MAX_DOCUMENTS}),
        )
    attachment = message.photo[-1] if message.photo else message.document
    if attachment is not None:
        documents.append(attachment.file_id)
    await reply(update, say("intake.document_received", count=len(documents), max=MAX_DOCUMENTS))
    return "documents"


async def finish_documents(update: Update, context: Context) -> str:
    if phrase(said(update)) not in DOCUMENTS_DONE:
        return await refuse(
            update, context, "documents", Invalid("intake.invalid.documents_expected")
        )
    draft = draft_of(context)
    draft.setdefault("documents", [])
    draft["documents_done"] = True
    return await ask_next(update, context)


async def answer_summary(update: Update, context: Context) -> str:
    """ "نعم" signs; a field's number asks that question again."""
    if phrase(said(update)) in SIGN:
        return await sign(update, context)
    number = number_in(update, len(FIELDS))
    if number is None:
        return await refuse(update, context, SUMMARY, Invalid("intake.invalid.summary"))
    draft = draft_of(context)
    field = FIELDS[number - 1]
    if field == "documents":
        draft.update(documents=[], documents_done=False)
    else:
        draft.pop(field, None)
    return await ask_next(update, context)


async def sign(update: Update, context: Context) -> str:
    """Store the request with a new reference and tell the reference and the decision window."""
    data, bot_data = user_data(context), context.bot_data
    now = datetime.now(UTC)
    due = now + timedelta(days=DECISION_DAYS)
    bot_data["last_reference"] = number = bot_data.get("last_reference", 0) + 1
    reference = f"REQ-{number:06d}"
    bot_data.setdefault("requests", {})[reference] = {
        **data.pop("draft"),
        "user_id": update.effective_user.id if update.effective_user else None,
        "status": "submitted",
        "created_at": now,
        "decision_due_at": due,
    }
    data.setdefault("references", []).insert(0, reference)
    body = say(
        "intake.received",
        reference=reference,
        period=period("ar", DECISION_DAYS),
        date=format_date(due, "ar", TIMEZONE),
    )
    await reply(update, body)
    return MENU


# --- status and rating ---


def describe(reference: str, request: dict[str, Any]) -> str:
    lines = say(
        "status.item",
        reference=reference,
        status=say(f"status.label.{request['status']}"),
        need=NEED_BY_KEY[request["need"]],
        filed=format_date(request["created_at"], "ar", TIMEZONE),
    )
    if request["status"] in ("submitted", "under_review", "needs_info"):
        due = format_date(request["decision_due_at"], "ar", TIMEZONE)
        lines += "\n" + say("status.item_due", due=due)
    return lines


async def show_status(update: Update, context: Context) -> str:
    """Menu option 2: the sender's own requests, newest first, at most five."""
    references: list[str] = user_data(context).get("references", [])
    if not references:
        await reply(update, say("status.none"))
        return MENU
    requests = context.bot_data["requests"]
    blocks = [say("status.header")]
    blocks += [describe(ref, requests[ref]) for ref in references[:MAX_SHOWN]]
    if len(references) > MAX_SHOWN:
        blocks.append(say("status.more", count=len(references) - MAX_SHOWN))
    if len(references) > 1:
        blocks.append(say("status.hint", example=references[0]))
    else:
        blocks.append(say("common.back_hint"))
    await reply(update, "\n\n".join(blocks))
    return MENU


async def start_rating(update: Update, context: Context) -> str:
    user_data(context)["bad_answers"] = 0
    await reply(update, say("rating.ask"), keyboard(SCORE_LABELS))
    return RATING_SCORE


async def answer_score(update: Update, context: Context) -> str:
    score = chosen(update, SCORE_LABELS)
    if score is None:
        return await refuse(
            update, context, RATING_SCORE, Invalid("rating.invalid"), keyboard(SCORE_LABELS)
        )
    user_data(context)["rating_score"] = score
    await reply(update, say("rating.ask_comment", max=COMMENT_MAX))
    return RATING_COMMENT


async def answer_comment(update: Update, context: Context) -> str:
    comment: str | None = said(update).strip()
    if phrase(said(update)) in SKIP:
        comment = None
    elif comment and len(comment) > COMMENT_MAX:
        invalid = Invalid(
            "rating.invalid.comment_long", {"count": len(comment), "max": COMMENT_MAX}
        )
        return await refuse(update, context, RATING_COMMENT, invalid)
    score = user_data(context).pop("rating_score")
    context.bot_data.setdefault("ratings", []).append(
        {"score": score, "comment": comment, "at": datetime.now(UTC)}
    )
    thanks = say("rating.thanks")
    await reply(update, f"{say('rating.low_score')}\n{thanks}" if score <= LOW_SCORE else thanks)
    return MENU


def conversation() -> ConversationHandler[Context]:
    """The whole dialogue: entry points, one list of handlers per state, fallbacks."""
    return ConversationHandler(
        entry_points=[
            CommandHandler("start", welcome),
            MessageHandler(filters.TEXT & ~filters.COMMAND, first_contact),
        ],
        states={
            MENU: [MessageHandler(ANSWER, choose)],
            CONTINUE_OR_RESTART: [MessageHandler(ANSWER, continue_or_restart)],
            CONSENT: [MessageHandler(ANSWER, answer_consent)],
            "name": [MessageHandler(ANSWER, answer_field("name"))],
            "national_id": [MessageHandler(ANSWER, answer_field("national_id"))],
            "mobile": [MessageHandler(ANSWER, answer_field("mobile"))],
            "city": [MessageHandler(ANSWER, answer_field("city"))],
            "need": [MessageHandler(ANSWER, answer_need)],
            "description": [MessageHandler(ANSWER, answer_field("description"))],
            "documents": [
                MessageHandler(ATTACHMENT, add_document),
                MessageHandler(ANSWER, finish_documents),
            ],
            SUMMARY: [MessageHandler(ANSWER, answer_summary)],
            RATING_SCORE: [MessageHandler(ANSWER, answer_score)],
            RATING_COMMENT: [MessageHandler(ANSWER, answer_comment)],
        },
        fallbacks=[CommandHandler("start", welcome), MessageHandler(BACK_TO_MENU, back_to_menu)],
        name="conversation",
        persistent=True,
    )


async def persist_now(_update: Update, context: Context) -> None:
    """After the conversation's handler (group 1 runs after group 0): write every change
    to the pickle file now rather than at the next flush."""
    await context.application.update_persistence()


# --- the webhook server ---


def web_app(application: Application[Any, Any, Any, Any, Any, Any], secret: str) -> web.Application:
    """``POST /webhooks/telegram`` queues the update and answers at once; ``GET /healthz``."""

    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != secret:
            return web.Response(status=403, text="forbidden")
        update = Update.de_json(await request.json(), application.bot)
        await application.update_queue.put(update)
        return web.Response()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/telegram", webhook)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(args: argparse.Namespace) -> None:
    """Start the bot, then the webhook server; stop both on SIGINT or SIGTERM."""
    api = args.api_base_url.rstrip("/")
    application = (
        Application.builder()
        .token(args.token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .persistence(
            PicklePersistence(
                filepath=Path(args.data_dir) / "ptb.pickle", update_interval=args.flush_interval
            )
        )
        .updater(None)
        .build()
    )
    application.add_handler(conversation())
    if args.persist_every_update:
        application.add_handler(TypeHandler(Update, persist_now), group=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with application:
        await application.start()
        runner = web.AppRunner(web_app(application, args.webhook_secret), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", args.port).start()
            log.info("python-telegram-bot baseline listening on 127.0.0.1:%d", args.port)
            await stop.wait()
        finally:
            await runner.cleanup()
            await application.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ptb_baseline", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--webhook-secret", required=True)
    parser.add_argument("--api-base-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=DEFAULT_FLUSH_SECONDS,
        help="seconds between PicklePersistence's writes (PTB's default: 60)",
    )
    parser.add_argument(
        "--persist-every-update",
        action="store_true",
        help="write the pickle after every update (durable, as Tawasul)",
    )
    args = parser.parse_args()
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every Bot API call at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
