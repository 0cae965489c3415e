"""The main menu and the words that work everywhere: greetings, 0, language, misunderstandings."""

import dataclasses

import pytest
from transcript import AUDIO, Script, Transcript, play

from flows import rating
from flows.menu import menu_choices
from flows.registry import DECLARED, ENTRIES, by_name, menu_entries
from flows.steps import MenuEntry
from flows.text import localize_digits
from flows.types import ConversationState, FlowSettings

WELCOME_AR = "أهلاً بك في جمعية البر"
MENU_AR = ["١- طلب دعم جديد", "٢- حالة طلبي", "٣- تقييم الخدمة", "٤- التحدث مع موظف"]
MENU_EN = ["1- New support request", "2- My request status", "3- Rate our service"]


@pytest.mark.parametrize(
    ("greeting", "salam"),
    [
        ("السلام عليكم", True),
        ("السلام عليكم ورحمة الله وبركاته", True),
        ("سلام", True),
        ("مرحبا", False),
        ("مرحباً 🌹", False),
        ("أهلاً", False),
        ("اهلا", False),
        ("Hello!", False),
    ],
)
def test_a_greeting_shows_the_welcome_and_menu(greeting: str, salam: bool) -> None:
    transcript = Transcript()
    reply = transcript.send(greeting)
    assert WELCOME_AR in reply
    assert all(option in reply for option in MENU_AR)
    assert "أرسل ٠ في أي وقت للعودة إلى هذه القائمة، وEnglish للغة الإنجليزية" in reply
    assert reply.startswith("وعليكم السلام ورحمة الله") is salam
    assert transcript.step == ("menu", "choose")


def test_the_menu_offers_its_choices_with_stable_number_payloads() -> None:
    transcript = Transcript()
    transcript.send("/start")
    (menu,) = transcript.replies
    # Numbers stay stable; new entries are appended (5: ask a question).
    assert [c.payload for c in menu.choices] == ["1", "2", "3", "4", "5", "6", "7"]


@pytest.mark.parametrize("said", ["4", "٤", "۴", "التحدث مع موظف", " 4. "])
def test_a_menu_option_by_any_digit_form_or_its_label(said: str) -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    transcript.send(said)
    assert transcript.step == ("handoff", "waiting")


def test_a_button_payload_picks_an_option() -> None:
    transcript = Transcript(channel="telegram")
    transcript.send("مرحبا")
    transcript.send("", payload="2")
    assert "ليس لديك طلبات بعد" in transcript.send("", payload="2")


def test_a_first_message_that_is_a_number_acts_on_it() -> None:
    transcript = Transcript()
    assert "لدراسة طلبك فقط" in transcript.send("١")  # the privacy notice, then the intake


MISUNDERSTOOD: Script = [
    ("مرحبا", [WELCOME_AR]),
    ("9", ["لم أفهم رسالتك. لطلب دعم أرسل ١، وللتحدث مع موظف أرسل ٤", "من ١ إلى ٧", *MENU_AR]),
    ("ماذا", ["لم أفهم طلبك", "أبلغنا أحد موظفي علاقات المستفيدين", "أوقات العمل"]),
]


def test_two_misunderstood_messages_in_a_row_open_a_handoff() -> None:
    transcript = Transcript()
    play(transcript, MISUNDERSTOOD[:2])
    assert transcript.step == ("menu", "choose")
    assert transcript.handoffs == []
    play(transcript, MISUNDERSTOOD[2:])
    assert transcript.step == ("handoff", "waiting")
    assert [h.reason for h in transcript.handoffs] == ["misunderstood"]


def test_an_understood_message_resets_the_misunderstood_count() -> None:
    transcript = Transcript()
    play(transcript, [("مرحبا", []), ("9", ["لم أفهم"]), ("2", ["ليس لديك طلبات"])])
    assert "لم أفهم رسالتك" in transcript.send("xyz")
    assert transcript.handoffs == []


def test_thanks_are_answered_politely_not_misunderstood() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    assert "العفو، يسعدنا خدمتك" in transcript.send("شكرا")
    assert "لم أفهم رسالتك" in transcript.send("؟؟")
    assert transcript.handoffs == []


@pytest.mark.parametrize("said", ["👍", "🙏🏽", "❤️", "👍👍 🌹"])
def test_a_thumbs_up_or_a_rose_alone_thanks(said: str) -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    assert "العفو، يسعدنا خدمتك" in transcript.send(said)
    assert "العفو، يسعدنا خدمتك" in transcript.send(said)  # not counted as misunderstood
    assert transcript.handoffs == [] and transcript.step == ("menu", "choose")


@pytest.mark.parametrize("said", ["😡", "👍؟", "💔"])
def test_other_marks_are_not_thanks(said: str) -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    assert "لم أفهم رسالتك" in transcript.send(said)


@pytest.mark.parametrize("word", ["English", "english", "ENGLISH", "انجليزي"])
def test_switching_to_english_in_the_menu(word: str) -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    reply = transcript.send(word)
    assert all(option in reply for option in MENU_EN)
    assert "عربي for Arabic" in reply
    assert transcript.state.language == "en"
    assert "١" not in reply


@pytest.mark.parametrize("word", ["عربي", "العربية", "arabic"])
def test_switching_back_to_arabic(word: str) -> None:
    transcript = Transcript(state=ConversationState("menu", "choose", {}, "en"))
    reply = transcript.send(word)
    assert all(option in reply for option in MENU_AR)
    assert transcript.state.language == "ar"


@pytest.mark.parametrize("said", ["0", "٠", "القائمة", "قائمه", "menu", "/start"])
def test_zero_and_menu_words_show_the_menu_from_any_flow(said: str) -> None:
    transcript = Transcript(state=ConversationState("rating", "comment", {"rating_score": 4}))
    reply = transcript.send(said)
    assert all(option in reply for option in MENU_AR)
    assert transcript.step == ("menu", "choose")
    assert "rating_score" not in transcript.state.data
    assert transcript.ratings == []


def test_a_greeting_in_the_middle_of_a_sentence_is_not_a_command() -> None:
    transcript = Transcript(state=ConversationState("intake", "description", {"intake_draft": {}}))
    transcript.send("مرحبا، أنا أرملة وأحتاج مساعدة في دفع الإيجار")
    assert transcript.state.flow == "intake"
    assert transcript.state.data["intake_draft"]["description"].startswith("مرحبا، أنا أرملة")


def test_crisis_words_need_configuration_and_work_with_letter_variants() -> None:
    settings = FlowSettings(crisis_words=("انتحار", "أؤذي نفسي"), hotline_text="")
    transcript = Transcript(settings)
    transcript.send("مرحبا")
    reply = transcript.send("أفكّر أن اؤذي نفسي")
    assert "أبلغنا فريقنا بشكل عاجل" in reply
    assert transcript.handoffs[-1].urgent


def test_the_menu_is_built_from_the_declared_entries_with_stable_numbers() -> None:
    # People learn the numbers: an entry keeps its number, new ones are appended.
    assert [(entry.number, entry.label) for entry in ENTRIES[:4]] == [
        (1, "menu.option.intake"),
        (2, "menu.option.status"),
        (3, "menu.option.rating"),
        (4, "menu.option.handoff"),
    ]
    extra = dataclasses.replace(
        rating.DECLARATION,
        name="extra",
        entry=MenuEntry(len(ENTRIES) + 1, "menu.option.rating", rating.from_menu),
    )
    entries = menu_entries([*DECLARED, extra])
    numbers = [str(n) for n in range(1, len(ENTRIES) + 2)]
    for language in ("ar", "en"):
        assert [choice.payload for choice in menu_choices(language, entries)] == numbers
    gap = dataclasses.replace(extra, entry=MenuEntry(len(ENTRIES) + 2, "x", rating.from_menu))
    with pytest.raises(ValueError, match="without gaps"):
        menu_entries([*DECLARED, gap])
    with pytest.raises(ValueError, match="two flows are named 'intake'"):
        by_name([*DECLARED, dataclasses.replace(extra, name="intake")])


def test_the_misunderstood_hint_names_the_last_entry_in_any_language() -> None:
    last = len(ENTRIES)
    for language, said, shown in (
        ("ar", "٩٩", localize_digits(str(last), "ar")),
        ("en", "99", str(last)),
    ):
        transcript = Transcript()
        transcript.send("English" if language == "en" else "مرحبا")
        reply = transcript.send(said)
        expected = f"من ١ إلى {shown}" if language == "ar" else f"from 1 to {shown}"
        assert expected in reply


def test_a_voice_note_at_the_menu_is_told_why_then_a_person_takes_over() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    reply = transcript.send(media=[AUDIO])
    assert "لا نستطيع هنا سماع التسجيلات الصوتية" in reply and "أرسل ٤" in reply
    assert transcript.handoffs == []
    transcript.send(media=[AUDIO])  # a second one: someone who may not write
    assert transcript.step == ("handoff", "waiting")
    assert [h.reason for h in transcript.handoffs] == ["misunderstood"]
