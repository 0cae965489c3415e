"""Interviews with the social researcher (menu option 7), "my appointments", and the
answer to a field visit staff proposed.

The beneficiary picks the branch (when there is more than one), one of the next free
days, then one of that day's free times, and confirms; ``BookAppointment`` takes the
place in the engine's transaction, which resumes at ``booked`` with
``appointment_reference`` (told with the date in both calendars) or, when the last
place went to someone else a moment before, ``appointment_taken`` (the next free times
are offered). A beneficiary has at most one interview to come: choosing 7 again, or
"مواعيدي" / "my appointments", offers to move or cancel it. Free places come from the
engine (``turn.lookup.appointments``); the slots from the configuration (``flows.slots``).

```mermaid
stateDiagram-v2
    [*] --> existing: menu 7, one booked
    [*] --> branch: menu 7, several branches
    [*] --> day: menu 7, one branch
    existing --> branch: move
    existing --> day: move, one branch
    existing --> cancel
    branch --> day
    day --> time
    time --> confirm
    confirm --> booked: yes
    booked --> time: just taken
    booked --> [*]: APT-… told
    cancel --> [*]
    [*] --> visit: staff proposed a visit
    visit --> [*]: yes, or another time (to staff)
```
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final

from babel.dates import get_day_names

from flows import slots
from flows.catalogue import text
from flows.dates import format_date, parse_moment
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    goto,
    heard,
    pick,
    refuse,
    said_one_of,
    say,
    sound,
    str_in,
)
from flows.text import localize_digits, normalize_digits, phrase
from flows.types import (
    AnswerVisit,
    AppointmentBook,
    AppointmentSummary,
    BookAppointment,
    CancelAppointment,
    Choice,
    ConversationState,
    InboundMessage,
    Language,
    OutboundMessage,
    Transition,
    Turn,
)
from flows.validation import Invalid
from flows.vocabulary import NO, YES

FLOW = "appointments"
NUMBER = 7
# Days offered at once (a WhatsApp list holds ten rows).
MAX_DAYS = 10
# What asks for one's appointments from anywhere (folded, the whole message).
MINE_WORDS: Final = frozenset(
    phrase(w) for w in ("مواعيدي", "موعدي", "my appointments", "my appointment")
)

# The menu entry's label, folded, in both languages: choosing it by name loads the book.
_LABELS: Final = frozenset(
    phrase(text(language, "menu.option.appointment")) for language in ("ar", "en")
)

BRANCH = "apt_branch"
DAY = "apt_day"
OFFERED = "apt_offered"
START = "apt_start"
MOVING = "apt_moving"
CHOSEN = "apt_chosen"
REFERENCE = "appointment_reference"  # put in by the engine after booking
TAKEN = "appointment_taken"  # put in by the engine when the place was gone
_KEYS = (BRANCH, DAY, OFFERED, START, MOVING, CHOSEN, REFERENCE, TAKEN)

_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$|^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?$")


def needs_book(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a step may read the appointments (``turn.lookup.appointments``), so the
    engine loads them only then: in this flow, option 7 at the menu, or asked for by name."""
    if state.flow == FLOW:
        return True
    said = phrase(normalize_digits(message.text or message.payload or ""))
    if state.flow == "menu" and (said == str(NUMBER) or said in _LABELS):
        return True
    return said in MINE_WORDS


def asks_mine(turn: Turn) -> bool:
    """Whether the whole message asks for one's appointments."""
    return phrase(heard(turn)) in MINE_WORDS


# --- what is shown ---


def _book(turn: Turn) -> AppointmentBook:
    return turn.lookup.appointments or AppointmentBook()


def day_label(day: date, language: Language) -> str:
    """A local date as the beneficiary reads it: the weekday, Hijri beside Gregorian."""
    weekday = get_day_names("wide", locale=language)[day.weekday()]
    noon = datetime(day.year, day.month, day.day, 12)  # a calendar day, read as it is
    return f"{weekday} {format_date(noon, language, 'UTC')}"


def clock(moment: datetime, language: Language, zone: str) -> str:
    """A time of day as the beneficiary reads it: "٠٩:٣٠" or "09:30"."""
    return localize_digits(slots.local_start(moment, zone).strftime("%H:%M"), language)


def describe(item: AppointmentSummary, language: Language, zone: str) -> str:
    """One appointment in a line: what, when (both calendars), where, its reference."""
    local = slots.local_start(item.starts_at, zone)
    return text(
        language,
        "apt.item.visit" if item.kind == "visit" else "apt.item.interview",
        reference=item.reference,
        day=day_label(local.date(), language),
        time=clock(item.starts_at, language, zone),
        branch=item.branch or "",
        status=text(language, f"apt.status.{item.status}"),
    )


def _interview(turn: Turn) -> AppointmentSummary | None:
    return next((a for a in _book(turn).mine if a.kind == "interview"), None)


def _mine(turn: Turn, reference: str | None) -> AppointmentSummary | None:
    return next((a for a in _book(turn).mine if a.reference == reference), None)


def _to_menu(state: ConversationState, *messages: OutboundMessage) -> Transition:
    return Transition(goto(state, "menu", "choose", **dict.fromkeys(_KEYS)), messages)


# --- entering: menu 7 ---


def start(turn: Turn, state: ConversationState) -> Transition:
    """Menu option 7: an interview to move or cancel, else a new one."""
    state = goto(state, FLOW, "start", **dict.fromkeys(_KEYS))
    language = state.language
    if not turn.settings.appointments.hours:
        return _to_menu(state, say(language, "apt.none_offered"))
    booked = _interview(turn)
    if booked is not None:
        return _offer_existing(turn, state, booked, lead="apt.have_one")
    return _begin(turn, state)


def _begin(turn: Turn, state: ConversationState) -> Transition:
    names = slots.branches(turn.settings.appointments)
    if len(names) > 1:
        new = goto(state, FLOW, "branch")
        return Transition(new, ask_branch(turn, new))
    return _to_days(turn, goto(state, FLOW, "day", **{BRANCH: names[0] if names else ""}))


def _branches(turn: Turn) -> tuple[Choice, ...]:
    names = slots.branches(turn.settings.appointments)
    return tuple(Choice(f"branch_{n}", name) for n, name in enumerate(names, 1))


def ask_branch(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "apt.ask.branch", choices=_branches(turn)),)


def answer_branch(turn: Turn) -> Transition:
    choices = _branches(turn)
    choice = pick(turn, choices)
    if choice is None:
        return refuse(turn, Invalid("apt.invalid.branch"), choices=choices)
    return _to_days(turn, goto(turn.state, FLOW, "day", **{BRANCH: choice.label}))


# --- the day ---


def _branch(state: ConversationState) -> str:
    return str_in(state.data, BRANCH) or ""


def _free_days(turn: Turn, state: ConversationState) -> tuple[date, ...]:
    settings = turn.settings
    return slots.free_days(
        settings.appointments,
        _branch(state),
        turn.now,
        settings.timezone,
        _book(turn).taken,
        settings.holidays,
    )[:MAX_DAYS]


def _days(turn: Turn, state: ConversationState) -> tuple[Choice, ...]:
    return tuple(
        Choice(day.isoformat(), day_label(day, state.language)) for day in _free_days(turn, state)
    )


def _to_days(turn: Turn, state: ConversationState, lead: str | None = None) -> Transition:
    if not _days(turn, state):
        return _to_menu(state, say(state.language, "apt.no_days", branch=_branch(state)))
    new = goto(state, FLOW, "day")
    messages = ask_day(turn, new)
    if lead is not None:
        messages = (OutboundMessage(text(state.language, lead), state.language), *messages)
    return Transition(new, messages)


def ask_day(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    choices = _days(turn, state)
    return (say(state.language, "apt.ask.day", branch=_branch(state), choices=choices),)


def _typed_date(said: str) -> date | None:
    match = _DATE.match(normalize_digits(said).strip())
    if match is None:
        return None
    y, m, d = (match.group(1), match.group(2), match.group(3))
    if y is None:
        d, m, y = match.group(4), match.group(5), match.group(6)
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def answer_day(turn: Turn) -> Transition:
    state = turn.state
    choices = _days(turn, state)
    choice = pick(turn, choices)
    if choice is not None:
        return _to_times(turn, state, date.fromisoformat(choice.payload))
    typed = _typed_date(heard(turn))
    if typed is None:
        return refuse(turn, Invalid("apt.invalid.day"), choices=choices)
    today = slots.local_start(turn.now, turn.settings.timezone).date()
    if typed < today:
        return refuse(turn, Invalid("apt.invalid.past"), choices=choices)
    if typed.isoformat() not in {c.payload for c in choices}:
        return refuse(turn, Invalid("apt.invalid.day_full"), choices=choices)
    return _to_times(turn, state, typed)


# --- the time ---


def _free_times(turn: Turn, state: ConversationState, day: date) -> tuple[datetime, ...]:
    settings = turn.settings
    found = slots.free_on(
        settings.appointments,
        _branch(state),
        day,
        turn.now,
        settings.timezone,
        _book(turn).taken,
        settings.holidays,
    )
    return tuple(slot.starts_at for slot in found)


def _to_times(
    turn: Turn,
    state: ConversationState,
    day: date,
    lead: str | None = None,
    without: datetime | None = None,
) -> Transition:
    times = [t for t in _free_times(turn, state, day) if t != without]
    if not times:
        return _to_days(turn, state, lead="apt.day_gone")
    new = goto(
        state, FLOW, "time", **{DAY: day.isoformat(), OFFERED: [t.isoformat() for t in times]}
    )
    messages = ask_time(turn, new)
    if lead is not None:
        messages = (OutboundMessage(text(state.language, lead), state.language), *messages)
    return Transition(new, messages)


def _offered(state: ConversationState) -> list[datetime]:
    stored = state.data.get(OFFERED)
    if not isinstance(stored, list):
        return []
    return [m for m in (parse_moment(s) for s in stored if isinstance(s, str)) if m is not None]


def _times(turn: Turn, state: ConversationState) -> tuple[Choice, ...]:
    zone, language = turn.settings.timezone, state.language
    return tuple(Choice(t.isoformat(), clock(t, language, zone)) for t in _offered(state))


def _day(state: ConversationState) -> date | None:
    stored = str_in(state.data, DAY)
    try:
        return date.fromisoformat(stored) if stored else None
    except ValueError:
        return None


def ask_time(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    day = _day(state)
    label = day_label(day, state.language) if day else ""
    return (say(state.language, "apt.ask.time", day=label, choices=_times(turn, state)),)


def _typed_time(said: str) -> tuple[int, int] | None:
    match = _TIME.match(normalize_digits(said).strip())
    if match is None or not match.group(2):  # a bare number is a choice, not a time
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    return (hour, minute) if hour < 24 and minute < 60 else None


def answer_time(turn: Turn) -> Transition:
    state, settings = turn.state, turn.settings
    day = _day(state)
    if day is None:
        return _to_days(turn, state)
    choices = _times(turn, state)
    choice = pick(turn, choices)
    wanted: datetime | None = parse_moment(choice.payload) if choice else None
    if wanted is None:
        typed = _typed_time(heard(turn))
        if typed is None:
            key = "apt.invalid.time_number" if phrase(heard(turn)).isdigit() else "apt.invalid.time"
            return refuse(turn, Invalid(key, {"count": len(choices)}), choices=choices)
        wanted = slots.local_moment(day, *typed, settings.timezone)
        rules = settings.appointments
        if (
            slots.slot_at(rules, _branch(state), wanted, settings.timezone, settings.holidays)
            is None
        ):
            return refuse(turn, Invalid("apt.invalid.outside_hours"), choices=choices)
    if wanted not in _free_times(turn, state, day):
        # Offered a moment ago, taken since (or too soon now): the list as it is now.
        return _to_times(turn, state, day, lead="apt.gone")
    new = goto(state, FLOW, "confirm", **{START: wanted.isoformat()})
    return Transition(new, ask_confirm(turn, new))


# --- confirming, and the reference ---


def _yes_no(language: Language) -> tuple[Choice, Choice]:
    return (
        Choice("yes", text(language, "apt.confirm.yes")),
        Choice("no", text(language, "apt.confirm.no")),
    )


def _said_yes(turn: Turn) -> bool | None:
    choice = pick(turn, _yes_no(turn.state.language))
    if choice is not None:
        return choice.payload == "yes"
    if said_one_of(turn, YES):
        return True
    if said_one_of(turn, NO):
        return False
    return None


def ask_confirm(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language, zone = state.language, turn.settings.timezone
    start = parse_moment(str_in(state.data, START))
    if start is None:
        return ask_time(turn, state)
    local = slots.local_start(start, zone)
    return (
        say(
            language,
            "apt.ask.confirm",
            branch=_branch(state),
            day=day_label(local.date(), language),
            time=clock(start, language, zone),
            choices=_yes_no(language),
        ),
    )


def answer_confirm(turn: Turn) -> Transition:
    state = turn.state
    yes = _said_yes(turn)
    start = parse_moment(str_in(state.data, START))
    if yes is None or start is None:
        return refuse(turn, Invalid("apt.invalid.yes_no"), choices=_yes_no(state.language))
    if not yes:
        return _to_menu(state, say(state.language, "apt.not_booked"))
    effect = BookAppointment(_branch(state), start, str_in(state.data, MOVING))
    new = goto(state, FLOW, "booked", **{REFERENCE: None, TAKEN: None})
    return Transition(new, (), (effect,), resume=True)


def tell_booked(turn: Turn) -> Transition:
    """After the engine tried to take the place: the reference, or other times."""
    state, language, zone = turn.state, turn.state.language, turn.settings.timezone
    reference = str_in(state.data, REFERENCE)
    start = parse_moment(str_in(state.data, START))
    if reference is None or start is None:
        taken = parse_moment(str_in(state.data, TAKEN))
        day = _day(state)
        cleared = goto(state, FLOW, "time", **{TAKEN: None})
        if day is None:
            return _to_days(turn, cleared, lead="apt.just_taken")
        return _to_times(turn, cleared, day, lead="apt.just_taken", without=taken)
    local = slots.local_start(start, zone)
    key = "apt.moved" if str_in(state.data, MOVING) else "apt.booked"
    body = text(
        language,
        key,
        reference=reference,
        branch=_branch(state),
        day=day_label(local.date(), language),
        time=clock(start, language, zone),
    )
    return _to_menu(state, OutboundMessage(body, language), say(language, "apt.manage_hint"))


def ask_booked(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "common.back_hint"),)


# --- an interview to come: move, cancel or keep it ---


def _manage(language: Language) -> tuple[Choice, ...]:
    return tuple(Choice(a, text(language, f"apt.manage.{a}")) for a in ("move", "cancel", "keep"))


def _offer_existing(
    turn: Turn, state: ConversationState, item: AppointmentSummary, lead: str | None = None
) -> Transition:
    new = goto(state, FLOW, "existing", **{CHOSEN: item.reference})
    messages = ask_existing(turn, new)
    if lead is not None:
        messages = (OutboundMessage(text(state.language, lead), state.language), *messages)
    return Transition(new, messages)


def ask_existing(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    item = _mine(turn, str_in(state.data, CHOSEN))
    if item is None:
        return (say(language, "apt.mine.none"),)
    line = describe(item, language, turn.settings.timezone)
    return (say(language, "apt.ask.manage", item=line, choices=_manage(language)),)


def answer_existing(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    item = _mine(turn, str_in(state.data, CHOSEN))
    if item is None:  # cancelled or passed meanwhile
        return _to_menu(state, say(language, "apt.mine.none"))
    choice = pick(turn, _manage(language))
    if choice is None:
        return refuse(turn, Invalid("apt.invalid.manage"), choices=_manage(language))
    if choice.payload == "keep":
        return _to_menu(state, say(language, "apt.kept"))
    if choice.payload == "cancel":
        new = goto(state, FLOW, "cancel")
        return Transition(new, ask_cancel(turn, new))
    if not turn.settings.appointments.hours:
        return _to_menu(state, say(language, "apt.none_offered"))
    return _begin(turn, goto(state, FLOW, "start", **{MOVING: item.reference}))


def ask_cancel(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    reference = str_in(state.data, CHOSEN) or ""
    return (say(language, "apt.ask.cancel", reference=reference, choices=_yes_no(language)),)


def answer_cancel(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    reference = str_in(state.data, CHOSEN)
    yes = _said_yes(turn)
    if yes is None:
        return refuse(turn, Invalid("apt.invalid.yes_no"), choices=_yes_no(language))
    if not yes or reference is None or _mine(turn, reference) is None:
        return _to_menu(state, say(language, "apt.kept"))
    cancelled = say(language, "apt.cancelled", reference=reference)
    new = goto(state, "menu", "choose", **dict.fromkeys(_KEYS))
    return Transition(new, (cancelled,), (CancelAppointment(reference),))


# --- "my appointments" ---


def show_mine(turn: Turn, state: ConversationState) -> Transition:
    """Everything still to come; one of them chosen to move, cancel or answer."""
    state = goto(state, FLOW, "pick", **dict.fromkeys(_KEYS))
    language, mine = state.language, _book(turn).mine
    if not mine:
        return _to_menu(state, say(language, "apt.mine.none"))
    if len(mine) == 1:
        return _open(turn, state, mine[0])
    return Transition(state, ask_pick(turn, state))


def _picks(turn: Turn, language: Language) -> tuple[Choice, ...]:
    zone = turn.settings.timezone
    return tuple(Choice(a.reference, describe(a, language, zone)) for a in _book(turn).mine)


def ask_pick(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "apt.mine.header", choices=_picks(turn, state.language)),)


def answer_pick(turn: Turn) -> Transition:
    choices = _picks(turn, turn.state.language)
    choice = pick(turn, choices)
    said = phrase(heard(turn)).upper().replace(" ", "-")
    item = _mine(turn, choice.payload if choice else said)
    if item is None:
        return refuse(turn, Invalid("apt.invalid.pick"), choices=choices)
    return _open(turn, turn.state, item)


def _open(turn: Turn, state: ConversationState, item: AppointmentSummary) -> Transition:
    if item.kind == "visit":
        new = goto(state, FLOW, "visit", **{CHOSEN: item.reference})
        return Transition(new, ask_visit(turn, new))
    return _offer_existing(turn, state, item)


# --- reminders ---


def reminder(language: Language, item: AppointmentSummary, zone: str) -> OutboundMessage:
    """The reminder before an interview or a visit (sent by the follow-ups)."""
    local = slots.local_start(item.starts_at, zone)
    key = "apt.reminder.visit" if item.kind == "visit" else "apt.reminder.interview"
    return say(
        language,
        key,
        reference=item.reference,
        day=day_label(local.date(), language),
        time=clock(item.starts_at, language, zone),
        branch=item.branch or "",
    )


# --- a field visit staff proposed ---


def visit_proposed(
    state: ConversationState, item: AppointmentSummary, zone: str
) -> tuple[ConversationState, OutboundMessage]:
    """Staff scheduled a visit: what the beneficiary reads at once, and the conversation
    waiting for their answer (in a handoff it stays with the staff member)."""
    state = sound(state)
    message = _visit_message(state.language, item, zone)
    if state.flow == "handoff":
        return state, message
    return goto(state, FLOW, "visit", **{CHOSEN: item.reference}), message


def _visit_choices(language: Language) -> tuple[Choice, Choice]:
    return (
        Choice("yes", text(language, "apt.visit.yes")),
        Choice("other", text(language, "apt.visit.other")),
    )


def _visit_message(language: Language, item: AppointmentSummary, zone: str) -> OutboundMessage:
    local = slots.local_start(item.starts_at, zone)
    return say(
        language,
        "apt.visit.proposed",
        reference=item.reference,
        day=day_label(local.date(), language),
        time=clock(item.starts_at, language, zone),
        staff=item.staff or text(language, "apt.visit.researcher"),
        choices=_visit_choices(language),
    )


def ask_visit(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    item = _mine(turn, str_in(state.data, CHOSEN))
    if item is None:
        return (say(state.language, "apt.mine.none"),)
    return (_visit_message(state.language, item, turn.settings.timezone),)


def answer_visit(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    reference = str_in(state.data, CHOSEN)
    choices = _visit_choices(language)
    choice = pick(turn, choices)
    confirmed = choice.payload == "yes" if choice else None
    if confirmed is None and said_one_of(turn, YES):
        confirmed = True
    if confirmed is None or reference is None:
        return refuse(turn, Invalid("apt.invalid.visit"), choices=choices)
    key = "apt.visit.confirmed" if confirmed else "apt.visit.change_asked"
    new = goto(state, "menu", "choose", **dict.fromkeys(_KEYS))
    reply = say(language, key, reference=reference)
    return Transition(new, (reply,), (AnswerVisit(reference, confirmed),))


STEPS: Final = {
    "start": Step(ask_booked, lambda turn: start(turn, turn.state)),
    "branch": Step(ask_branch, answer_branch),
    "day": Step(ask_day, answer_day),
    "time": Step(ask_time, answer_time),
    "confirm": Step(ask_confirm, answer_confirm),
    "booked": Step(ask_booked, tell_booked),
    "existing": Step(ask_existing, answer_existing),
    "cancel": Step(ask_cancel, answer_cancel),
    "pick": Step(ask_pick, answer_pick),
    "visit": Step(ask_visit, answer_visit),
}

DECLARATION: Final = FlowDeclaration(
    FLOW, STEPS, MenuEntry(NUMBER, "menu.option.appointment", start)
)
