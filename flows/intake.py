"""The support-request intake: eight questions, the signed declaration, the reference.

Diagram: intake.md. Answers live in ``data["intake_draft"]`` from the first one on, so
leaving (``0``, a handoff) keeps them; the next step is always derived from which
answers are still missing, which also brings an edited field back to the summary.
A sender who filed before is first asked whom the request is for (one phone often
speaks for a household): an earlier applicant fills the name and national ID.
A draft left alone is followed up by the scheduler: ``remind``, then ``expire``.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, Final

from flows.catalogue import text
from flows.cities import city_label, known_city, nearest_city, suggest_city
from flows.dates import aware, format_date, parse_moment, period
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    dict_in,
    goto,
    heard,
    lead_with,
    need_label,
    number_in,
    offered_needs,
    pick,
    refuse,
    said_one_of,
    say,
    sound,
    stay,
    str_in,
)
from flows.text import localize_digits, normalize_digits, phrase
from flows.types import (
    Applicant,
    Choice,
    ConversationState,
    InboundMessage,
    Language,
    Media,
    OutboundMessage,
    SaveIntake,
    Transition,
    Turn,
)
from flows.validation import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    Invalid,
    check_city,
    check_description,
    check_mobile,
    check_name,
    check_national_id,
    is_document,
    local_mobile,
    mask_national_id,
)
from flows.vocabulary import CONTINUE, DOCUMENTS_DONE, NO, RESTART, SIGN, SOMEONE_ELSE, YES

FLOW = "intake"
DRAFT = "intake_draft"
TOTAL_STEPS = 8
# Summary lines are numbered like the steps, so "3" in the summary means "correct step 3".
FIELDS: Final = ("name", "national_id", "mobile", "city", "need", "description", "documents")
ANSWERS: Final = FIELDS[:-1]
MAX_DOCUMENTS = 5
# What a supporting document may come as; on a channel that carries neither, documents go
# to the researcher later.
DOCUMENT_MEDIA: Final = frozenset({"image", "document"})
# Coming back after this long, the beneficiary may not remember: ask before going on.
SILENCE = timedelta(hours=12)
SUMMARY_DESCRIPTION_CHARS = 100
# The city the bot asked about ("did you mean …?", or a name not on the list): "yes" keeps it.
CITY_OFFER = "city_offer"
# The privacy notice the beneficiary agreed to (version, time, channel, message id): kept
# in the conversation, so a new notice version is asked at the next intake.
CONSENT = "consent"
# "لمن هذا الطلب؟": asked first when the sender filed before. A WhatsApp list holds ten
# rows: the last nine people first filed for (numbers stay put), and "someone else".
FOR_WHOM = "for_whom"
MAX_APPLICANTS = 9
# In the draft: "someone else" was chosen, so the name and ID are asked about the applicant.
FOR_SOMEONE_ELSE = "for_someone_else"
# The steps from which the first question is asked, so they read the applicants.
_BEFORE_FOR_WHOM: Final = frozenset({"consent", "continue_or_restart", FOR_WHOM})
# The menu entry's label, folded, in both languages (choosing it by name starts the intake).
_ENTRY_LABELS: Final = frozenset(
    phrase(text(language, "menu.option.intake")) for language in ("ar", "en")
)
# Name parts that are not a first name on their own ("عبد الله", "أم محمد").
_NAME_PREFIXES: Final = frozenset(phrase(p) for p in ("عبد", "أبو", "ابو", "أم", "ام", "بن"))


# --- the draft ---


def draft_of(state: ConversationState) -> dict[str, Any]:
    """The answers given so far (a copy)."""
    return dict_in(state.data, DRAFT)


def next_step(draft: dict[str, Any]) -> str:
    """The first question still unanswered, else the summary."""
    missing = next((f for f in ANSWERS if not isinstance(draft.get(f), str) or not draft[f]), None)
    if missing:
        return missing
    return "summary" if draft.get("documents_done") is True else "documents"


def _documents(draft: dict[str, Any]) -> list[dict[str, str]]:
    stored = draft.get("documents")
    if not isinstance(stored, list):
        return []
    return [
        d
        for d in stored
        if isinstance(d, dict)
        and isinstance(d.get("url"), str)
        and isinstance(d.get("content_type"), str)
    ]


# --- entering and moving ---


def start(turn: Turn, state: ConversationState) -> Transition:
    """Menu option 1: a new intake, or "continue or start over" when a draft exists."""
    if draft_of(state):
        return _move(turn, state, "continue_or_restart")
    return _begin(turn, state)


def stale(turn: Turn) -> bool:
    """Whether the beneficiary comes back to a half-done intake after a long silence."""
    state = turn.state
    if state.flow != FLOW or state.step not in (*FIELDS, "summary") or not draft_of(state):
        return False
    if turn.message.media or turn.message.location:  # an answer worth keeping after a pause
        return False
    seen = parse_moment(str_in(state.data, "last_seen"))
    return seen is not None and aware(turn.now) - seen > SILENCE


def offer_continue(turn: Turn, state: ConversationState) -> Transition:
    return _move(turn, state, "continue_or_restart")


def reads_applicants(flow: str, step: str, message: InboundMessage) -> bool:
    """Whether the turn may ask whom a new request is for (``turn.lookup.applicants``),
    so the engine loads them only then: at the menu on this entry (its number, button or
    name), or at a step the first question follows (``flow`` is "menu" for any state
    the router sends back to the menu)."""
    if flow == FLOW:
        return step in _BEFORE_FOR_WHOM
    said = phrase(normalize_digits(message.text or message.payload or ""))
    return flow == "menu" and (said == str(ENTRY.number) or said in _ENTRY_LABELS)


def _begin(turn: Turn, state: ConversationState) -> Transition:
    """A new intake: the privacy notice when due, then whom it is for or the name."""
    if _consent_due(turn, state):
        return _move(turn, state, "consent", draft={})
    intro = text(state.language, "intake.intro", total=TOTAL_STEPS)
    first = FOR_WHOM if _applicants(turn) else "name"
    return _move(turn, state, first, draft={}, lead=intro)


def _applicants(turn: Turn) -> tuple[Applicant, ...]:
    """Whom this sender filed for before (the latest ``MAX_APPLICANTS``, oldest first)."""
    sound = tuple(
        applicant
        for applicant in turn.lookup.applicants
        if applicant.name and isinstance(check_national_id(applicant.national_id), str)
    )
    return sound[-MAX_APPLICANTS:]


def first_name(name: str) -> str:
    """The first name of a full name, with its second part where the first is only a
    prefix ("عبد الله"); the whole name when it has one part."""
    parts = name.split()
    if len(parts) > 1 and phrase(parts[0]) in _NAME_PREFIXES:
        return " ".join(parts[:2])
    return parts[0] if parts else name


def _consent_due(turn: Turn, state: ConversationState) -> bool:
    """Whether the privacy notice must be asked: one is configured, and this
    conversation has not agreed to its version."""
    version = turn.settings.notice_version
    return bool(version) and dict_in(state.data, CONSENT).get("version") != version


def _resume(turn: Turn, state: ConversationState) -> Transition:
    """Back to a draft where it stopped; the privacy notice first when it is due (a draft
    begun before the notice or before its current version), keeping the draft."""
    if _consent_due(turn, state):
        return _move(turn, state, "consent")
    return _move(turn, state, next_step(draft_of(state)))


def _move(
    turn: Turn,
    state: ConversationState,
    step: str,
    *,
    draft: dict[str, Any] | None = None,
    lead: str | None = None,
) -> Transition:
    new = goto(state, FLOW, step, **({} if draft is None else {DRAFT: draft}))
    replies = STEPS[step].prompt(turn, new)
    return Transition(new, lead_with(lead, replies) if lead else replies)


def _keep(turn: Turn, field: str, answer: str | Invalid) -> Transition:
    """Store a valid answer and ask the next question, or refuse with the reason."""
    if isinstance(answer, Invalid):
        return refuse(turn, answer)
    draft = {**draft_of(turn.state), field: answer}
    return _move(turn, turn.state, next_step(draft), draft=draft)


# --- questions ---


def _question(
    state: ConversationState,
    step: str,
    key: str,
    choices: tuple[Choice, ...] = (),
    **params: object,
) -> OutboundMessage:
    language = state.language
    number = FIELDS.index(step) + 1 if step in FIELDS else TOTAL_STEPS
    counter = text(language, "intake.counter", step=number, total=TOTAL_STEPS)
    return OutboundMessage(f"{counter} {text(language, key, **params)}", language, choices)


def _sender_mobile(turn: Turn) -> str | None:
    """The sender's own number when it is a Saudi mobile (WhatsApp, SMS), to offer it."""
    return _own_mobile(turn.lookup.sender_phone or "")


@functools.lru_cache(maxsize=4096)
def _own_mobile(phone: str) -> str | None:
    # A channel's number (short, trusted), looked at in two steps of every intake:
    # phonenumbers' checks were the costliest part of those turns.
    checked = check_mobile(phone)
    return checked if isinstance(checked, str) else None


def _need_choices(turn: Turn, language: Language) -> tuple[Choice, ...]:
    needs = offered_needs(turn.settings)
    return tuple(Choice(str(n), need.label(language)) for n, need in enumerate(needs, start=1))


def _for_whom_choices(turn: Turn, language: Language) -> tuple[Choice, ...]:
    """Each earlier applicant by first name and masked ID, then "someone else"."""
    people = tuple(
        Choice(
            str(number),
            text(
                language,
                "intake.choice.applicant",
                name=first_name(applicant.name),
                national_id=mask_national_id(applicant.national_id),
            ),
        )
        for number, applicant in enumerate(_applicants(turn), start=1)
    )
    other = Choice(str(len(people) + 1), text(language, "intake.choice.someone_else"))
    return (*people, other)


def _continue_choices(language: Language) -> tuple[Choice, ...]:
    return (
        Choice("1", text(language, "intake.choice.continue")),
        Choice("2", text(language, "intake.choice.restart")),
    )


def _yes_no(language: Language) -> tuple[Choice, ...]:
    return (
        Choice("1", text(language, "privacy.choice.agree")),
        Choice("2", text(language, "privacy.choice.decline")),
    )


def ask_consent(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    """The two-line privacy notice (what, why, who, how long; the link) and yes/no."""
    language, settings = state.language, turn.settings
    lines = [
        text(
            language,
            "privacy.notice",
            organization=settings.organization_name,
            kept=kept_for(language, settings.retention_days),
        )
    ]
    if settings.notice_url:
        lines.append(text(language, "privacy.notice_link", url=settings.notice_url))
    lines.append(text(language, "privacy.ask"))
    return (OutboundMessage("\n".join(lines), language, _yes_no(language)),)


def kept_for(language: Language, days: int) -> str:
    """How long data is kept, in words: whole years as years, else days."""
    if days % 365:
        return period(language, days)
    years = days // 365
    if years in (1, 2):
        return text(language, f"privacy.years.{years}")
    return text(language, "privacy.years.few" if years <= 10 else "privacy.years.many", years=years)


def ask_continue(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    return (say(language, "intake.ask.continue", choices=_continue_choices(language)),)


def ask_for_whom(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    return (say(language, "intake.ask.for_whom", choices=_for_whom_choices(turn, language)),)


def _for_someone_else(state: ConversationState) -> bool:
    return draft_of(state).get(FOR_SOMEONE_ELSE) is True


def ask_name(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    key = "intake.ask.name_applicant" if _for_someone_else(state) else "intake.ask.name"
    return (_question(state, "name", key),)


def ask_national_id(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    applicant = _for_someone_else(state)
    key = "intake.ask.national_id_applicant" if applicant else "intake.ask.national_id"
    return (_question(state, "national_id", key),)


def ask_mobile(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    sender = _sender_mobile(turn)
    if sender is None:
        return (_question(state, "mobile", "intake.ask.mobile"),)
    phone = localize_digits(local_mobile(sender), state.language)
    return (_question(state, "mobile", "intake.ask.mobile_confirm", phone=phone),)


def ask_city(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (_question(state, "city", "intake.ask.city"),)


def ask_need(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    choices = _need_choices(turn, state.language)
    return (_question(state, "need", "intake.ask.need", choices),)


def ask_description(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (
        _question(
            state, "description", "intake.ask.description", min=DESCRIPTION_MIN, max=DESCRIPTION_MAX
        ),
    )


def ask_documents(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    if DOCUMENT_MEDIA & turn.lookup.media:
        return (_question(state, "documents", "intake.ask.documents", max=MAX_DOCUMENTS),)
    return (_question(state, "documents", "intake.ask.documents_no_media"),)


def ask_summary(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language, draft = state.language, draft_of(state)
    lines = [_question(state, "summary", "intake.summary.title").text]
    for number, field in enumerate(FIELDS, start=1):
        label = text(language, f"intake.field.{field}")
        value = _shown(turn, language, field, draft)
        lines.append(text(language, "intake.summary.line", number=number, label=label, value=value))
    lines.append(text(language, "intake.declaration"))
    return (OutboundMessage("\n".join(lines), language),)


def _shown(turn: Turn, language: Language, field: str, draft: dict[str, Any]) -> str:
    """A field as the summary shows it: ID masked, phone local, need by label."""
    if field == "documents":
        count = len(_documents(draft))
        return (
            localize_digits(str(count), language)
            if count
            else text(language, "intake.summary.no_documents")
        )
    value = str(draft.get(field, ""))
    if field == "national_id":
        return mask_national_id(value)
    if field == "mobile":
        return localize_digits(local_mobile(value), language)
    if field == "need":
        return need_label(turn.settings, value, language)
    if field == "city":
        return city_label(value, language)
    if field == "description" and len(value) > SUMMARY_DESCRIPTION_CHARS:
        return value[:SUMMARY_DESCRIPTION_CHARS].rstrip() + "…"
    return value


def ask_submitted(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "common.back_hint"),)


# --- answers ---


def answer_continue(turn: Turn) -> Transition:
    state = turn.state
    choice = pick(turn, _continue_choices(state.language))
    if (choice and choice.payload == "1") or said_one_of(turn, CONTINUE):
        return _resume(turn, state)
    if (choice and choice.payload == "2") or said_one_of(turn, RESTART):
        return _begin(turn, state)
    reason = Invalid("intake.invalid.continue")
    return refuse(turn, reason, choices=_continue_choices(state.language))


def answer_consent(turn: Turn) -> Transition:
    """Agreed: the consent is kept with the notice's version and the intake begins, or
    resumes where it stopped when asked on "continue". Declined: nothing of the intake
    is kept (a draft is dropped), and a person is offered."""
    state, language = turn.state, turn.state.language
    choice = pick(turn, _yes_no(language))
    message = turn.message
    if (choice and choice.payload == "1") or said_one_of(turn, YES) or said_one_of(turn, SIGN):
        consent = {
            "version": turn.settings.notice_version,
            "at": turn.now.isoformat(),
            "channel": message.address.channel,
            "message_id": message.platform_message_id or "",
        }
        agreed = stay(state, **{CONSENT: consent})
        return _resume(turn, agreed) if draft_of(state) else _begin(turn, agreed)
    if (choice and choice.payload == "2") or said_one_of(turn, NO):
        # At the menu, where "4" (in the text) is the menu's own "talk to a staff member".
        new = goto(state, "menu", "choose", **{DRAFT: None})
        return Transition(new, (say(language, "privacy.declined"),))
    return refuse(turn, Invalid("privacy.invalid"), choices=_yes_no(language))


def answer_for_whom(turn: Turn) -> Transition:
    """An earlier applicant fills the name and national ID (the summary shows them to
    confirm); "someone else" asks for them."""
    state, language = turn.state, turn.state.language
    draft = draft_of(state)
    applicants = _applicants(turn)
    if not applicants:  # nobody left to offer (erased meanwhile): ask as for anyone
        return _move(turn, state, next_step(draft), draft=draft)
    choices = _for_whom_choices(turn, language)
    choice = pick(turn, choices)
    if choice is not None:
        index = int(choice.payload) - 1
    elif said_one_of(turn, SOMEONE_ELSE):
        index = len(applicants)
    else:  # a first name alone, when it names one of them
        said = phrase(heard(turn))
        named = [n for n, a in enumerate(applicants) if said and phrase(first_name(a.name)) == said]
        if len(named) != 1:
            reason = Invalid("intake.invalid.for_whom", {"count": len(choices)})
            return refuse(turn, reason, choices=choices)
        index = named[0]
    if index < len(applicants):
        chosen = applicants[index]
        draft = {**draft, "name": chosen.name, "national_id": chosen.national_id}
    else:  # the name and ID are then asked about the applicant, not the sender
        draft = {**draft, FOR_SOMEONE_ELSE: True}
    return _move(turn, state, next_step(draft), draft=draft)


def answer_name(turn: Turn) -> Transition:
    return _keep(turn, "name", check_name(heard(turn)))


def answer_national_id(turn: Turn) -> Transition:
    return _keep(turn, "national_id", check_national_id(heard(turn)))


def answer_mobile(turn: Turn) -> Transition:
    sender = _sender_mobile(turn)
    if sender and said_one_of(turn, YES):
        return _keep(turn, "mobile", sender)
    if sender and said_one_of(turn, NO):
        other = _question(turn.state, "mobile", "intake.ask.mobile_other")
        return Transition(turn.state, (other,))
    return _keep(turn, "mobile", check_mobile(heard(turn)))


def answer_city(turn: Turn) -> Transition:
    location = turn.message.location
    if location is not None:  # a shared location answers with the nearest known city
        city = nearest_city(location.latitude, location.longitude)
        if city is None:
            return Transition(turn.state, (_question(turn.state, "city", "intake.ask.city_typed"),))
        return _keep_city(turn, city)
    offered = str_in(turn.state.data, CITY_OFFER)
    if offered and said_one_of(turn, YES):
        return _keep_city(turn, offered)
    if offered and said_one_of(turn, NO):
        return Transition(stay(turn.state, **{CITY_OFFER: None}), ask_city(turn, turn.state))
    answer = check_city(heard(turn))
    if isinstance(answer, Invalid):
        return refuse(turn, answer)
    if known_city(answer):
        return _keep_city(turn, answer)
    # Not on the list: a near miss is offered as "did you mean", anything else is kept
    # only once the beneficiary says it is right.
    suggestion = suggest_city(answer)
    language = turn.state.language
    if suggestion is not None:
        label = city_label(suggestion, language)
        ask = say(language, "intake.city.did_you_mean", city=label)
    else:
        ask = say(language, "intake.city.unknown", city=answer)
    return Transition(stay(turn.state, **{CITY_OFFER: suggestion or answer}), (ask,))


def _keep_city(turn: Turn, city: str) -> Transition:
    draft = {**draft_of(turn.state), "city": city}
    state = stay(turn.state, **{CITY_OFFER: None})
    return _move(turn, state, next_step(draft), draft=draft)


def answer_need(turn: Turn) -> Transition:
    choices = _need_choices(turn, turn.state.language)
    choice = pick(turn, choices)
    if choice is None:
        reason = Invalid("intake.invalid.need", {"count": len(choices)})
        return refuse(turn, reason, choices=choices)
    return _keep(turn, "need", offered_needs(turn.settings)[int(choice.payload) - 1].key)


def answer_description(turn: Turn) -> Transition:
    return _keep(turn, "description", check_description(heard(turn)))


def answer_documents(turn: Turn) -> Transition:
    draft = draft_of(turn.state)
    documents = _documents(draft)
    if turn.message.media:
        return _collect(turn, draft, documents)
    if said_one_of(turn, DOCUMENTS_DONE):
        return _finish_documents(turn, draft, documents)
    if DOCUMENT_MEDIA & turn.lookup.media:
        return refuse(turn, Invalid("intake.invalid.documents_expected"))
    return refuse(turn, Invalid("intake.invalid.documents_text_only"))


def _collect(turn: Turn, draft: dict[str, Any], documents: list[dict[str, str]]) -> Transition:
    """Keep the photos and PDFs of one message, up to the limit, and say what happened."""
    language = turn.state.language
    added, wrong_type, full = 0, False, False
    for media in turn.message.media:
        if not is_document(media.content_type):
            wrong_type = True
        elif len(documents) >= MAX_DOCUMENTS:
            full = True
        else:
            documents.append(_stored(media))
            added += 1
    if not added and not full:
        return refuse(turn, Invalid("intake.invalid.document_type"))
    if said_one_of(turn, DOCUMENTS_DONE):  # "تم" as the caption of the last photo
        return _finish_documents(turn, draft, documents)
    lines = []
    if added:
        lines.append(
            text(language, "intake.document_received", count=len(documents), max=MAX_DOCUMENTS)
        )
    if wrong_type:
        lines.append(text(language, "intake.invalid.document_type"))
    if full:
        lines.append(text(language, "intake.invalid.document_limit", max=MAX_DOCUMENTS))
    new = goto(turn.state, FLOW, "documents", **{DRAFT: {**draft, "documents": documents}})
    return Transition(new, (OutboundMessage("\n".join(lines), language),))


def _stored(media: Media) -> dict[str, str]:
    stored = {"url": media.url, "content_type": media.content_type}
    return stored | ({"filename": media.filename} if media.filename else {})


def _finish_documents(
    turn: Turn, draft: dict[str, Any], documents: list[dict[str, str]]
) -> Transition:
    draft = {**draft, "documents": documents, "documents_done": True}
    return _move(turn, turn.state, next_step(draft), draft=draft)


def answer_summary(turn: Turn) -> Transition:
    state, draft = turn.state, draft_of(turn.state)
    if next_step(draft) != "summary":  # stored draft lost an answer: ask for it
        return _move(turn, state, next_step(draft))
    if said_one_of(turn, SIGN):
        if _consent_due(turn, state):  # the notice changed since it was agreed to
            lead = text(state.language, "privacy.changed")
            return _move(turn, state, "consent", lead=lead)
        return _sign(turn, draft)
    number = number_in(turn, len(FIELDS))
    if number is None:
        return refuse(turn, Invalid("intake.invalid.summary"))
    field = FIELDS[number - 1]
    if field == "documents":
        return _move(turn, state, field, draft={**draft, "documents": [], "documents_done": False})
    return _move(turn, state, field, draft={k: v for k, v in draft.items() if k != field})


def _sign(turn: Turn, draft: dict[str, Any]) -> Transition:
    """The declaration is signed: ask the engine to save the request, then tell the reference."""
    due = turn.now + timedelta(days=turn.settings.decision_days)
    documents = tuple(
        Media(url=d["url"], content_type=d["content_type"], filename=d.get("filename"))
        for d in _documents(draft)
    )
    consent = dict_in(turn.state.data, CONSENT)
    effect = SaveIntake(
        answers={field: str(draft[field]) for field in ANSWERS},
        documents=documents,
        decision_due_at=due,
        signed_at=turn.now,
        consent={key: str(value) for key, value in consent.items()} or None,
    )
    new = goto(turn.state, FLOW, "submitted", **{DRAFT: None}, decision_due_at=due.isoformat())
    return Transition(new, (), (effect,), resume=True)


def tell_reference(turn: Turn) -> Transition:
    """After the engine saved the request: the reference and the decision window."""
    state, language, settings = turn.state, turn.state.language, turn.settings
    due: datetime = parse_moment(str_in(state.data, "decision_due_at")) or (
        turn.now + timedelta(days=settings.decision_days)
    )
    reference = str_in(state.data, "reference")
    key = "intake.received" if reference else "intake.received_no_reference"
    body = text(
        language,
        key,
        reference=reference or "",
        period=period(language, settings.decision_days),
        date=format_date(due, language, settings.timezone),
    )
    new = goto(state, "menu", "choose", reference=None, decision_due_at=None)
    return Transition(new, (OutboundMessage(body, language),))


STEPS: Final = {
    "continue_or_restart": Step(ask_continue, answer_continue),
    "consent": Step(ask_consent, answer_consent),
    FOR_WHOM: Step(ask_for_whom, answer_for_whom),
    "name": Step(ask_name, answer_name, free_text=True),
    "national_id": Step(ask_national_id, answer_national_id),
    "mobile": Step(ask_mobile, answer_mobile),
    "city": Step(ask_city, answer_city),
    "need": Step(ask_need, answer_need),
    "description": Step(ask_description, answer_description, free_text=True),
    "documents": Step(ask_documents, answer_documents, free_text=True, takes_media=True),
    "summary": Step(ask_summary, answer_summary),
    "submitted": Step(ask_submitted, tell_reference),
}

ENTRY: Final = MenuEntry(1, "menu.option.intake", start)
DECLARATION: Final = FlowDeclaration(FLOW, STEPS, ENTRY)


# --- follow-ups: what the scheduler does to a draft left alone (the engine calls these) ---


def has_draft(state: ConversationState) -> bool:
    """Whether ``state`` holds a half-done intake: at least one answer, not yet signed."""
    return bool(draft_of(sound(state)))


def last_seen(state: ConversationState) -> datetime | None:
    """When the beneficiary last wrote, as the router noted it (None when unknown)."""
    return parse_moment(str_in(sound(state).data, "last_seen"))


def remind(state: ConversationState) -> tuple[ConversationState, tuple[OutboundMessage, ...]]:
    """The reminder of a half-done intake: "continue or start over", or ``0`` for the menu.

    The conversation moves to that question, so that "1" continues where it stopped.
    A state without a draft stays as it is, with nothing to say.
    """
    state = sound(state)
    if not draft_of(state):
        return state, ()
    new = goto(state, FLOW, "continue_or_restart")
    message = say(new.language, "intake.reminder", choices=_continue_choices(new.language))
    return new, (message,)


def expire(state: ConversationState) -> tuple[ConversationState, tuple[OutboundMessage, ...]]:
    """A draft left alone too long is dropped, and the beneficiary told so kindly.

    Whatever the conversation was doing is as stale as the draft: it goes back to the
    menu (as ``0`` would), so that "1" starts a new request. Without a draft nothing
    changes and nothing is said.
    """
    state = sound(state)
    if not draft_of(state):
        return state, ()
    new = goto(
        state,
        "menu",
        "choose",
        **{DRAFT: None},
        handoff_acked=None,
        rating_score=None,
        rating_reference=None,
        rating_context=None,
    )
    return new, (say(new.language, "intake.expired"),)
