"""Handing over to a person: on request, on keywords, urgently on crisis words; and leaving."""

import pytest
from transcript import Transcript, play

from flows.types import CloseHandoff, ConversationState, FlowSettings, OpenHandoff

HOTLINE = "إن كنت في خطر الآن فاتصل بالرقم ٩٣٧ أو ٩١١."
SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    handoff_keywords=("موظف", "staff", "اريد شخص"),
    crisis_words=("انتحار", "أقتل نفسي", "suicide"),
    hotline_text=HOTLINE,
)


def test_menu_four_opens_a_handoff_with_working_hours() -> None:
    transcript = Transcript(SETTINGS)
    reply = transcript.send("٤")
    assert "أبلغنا أحد موظفي علاقات المستفيدين، وسيرد عليك هنا في أقرب وقت" in reply
    assert "(أوقات العمل: الأحد–الخميس، ٨ص–٤م)" in reply
    assert "أرسل ٠ للعودة إلى القائمة" in reply
    assert transcript.handoffs == [OpenHandoff("requested")]
    assert transcript.step == ("handoff", "waiting")


def test_in_a_handoff_only_the_first_message_is_acknowledged() -> None:
    transcript = Transcript(SETTINGS)
    play(
        transcript,
        [
            ("4", []),
            ("السلام عليكم، عندي سؤال عن طلبي", ["وصلت رسالتك، وسيرد عليك أحد الموظفين هنا"]),
            ("1", []),
            ("English", []),
        ],
    )
    assert transcript.replies == ()  # staff answer; the bot keeps quiet
    assert transcript.step == ("handoff", "waiting")
    assert transcript.state.language == "ar"


def test_zero_leaves_the_handoff_and_the_rating_is_about_it() -> None:
    transcript = Transcript(SETTINGS)
    play(
        transcript,
        [
            ("4", []),
            ("0", ["١- طلب دعم جديد", "لتقييم محادثتك مع الموظف أرسل ٣"]),
            ("3", ["نرجو تقييم محادثتك مع موظفنا", "لا يترتب عليه أي أثر على طلباتك"]),
            ("5", ["هل تود إضافة ملاحظة"]),
            ("تخطي", ["شكراً لتقييمك"]),
        ],
    )
    assert transcript.closed_handoffs == 1
    assert CloseHandoff() in transcript.effects
    assert transcript.ratings[0].context == "handoff"


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (ConversationState(), "أفكر في الانتحار"),
        (ConversationState("menu", "choose"), "أفكّر في الانتحار"),
        (ConversationState("intake", "description", {"intake_draft": {}}), "سوف أقتل نفسي"),
        (ConversationState("intake", "name", {"intake_draft": {}}), "بالانتحار"),
        (ConversationState("rating", "comment", {"rating_score": 1}), "I think about suicide"),
        (ConversationState("handoff", "waiting", {"handoff_acked": True}), "انتحار"),
    ],
)
def test_crisis_words_give_the_hotline_first_and_an_urgent_handoff(
    state: ConversationState, said: str
) -> None:
    transcript = Transcript(SETTINGS, state=state)
    transcript.send(said)
    hotline, urgent = transcript.replies
    assert hotline.text == HOTLINE
    assert "أبلغنا فريقنا بشكل عاجل" in urgent.text
    assert transcript.handoffs == [OpenHandoff("crisis", urgent=True)]
    assert transcript.step == ("handoff", "waiting")


def test_without_hotline_text_only_the_urgent_message() -> None:
    settings = FlowSettings(crisis_words=("انتحار",))
    transcript = Transcript(settings)
    transcript.send("انتحار")
    assert len(transcript.replies) == 1
    assert transcript.handoffs[0].urgent


def test_crisis_keeps_an_intake_draft() -> None:
    draft = {"name": "محمد أحمد"}
    transcript = Transcript(
        SETTINGS, state=ConversationState("intake", "city", {"intake_draft": draft})
    )
    transcript.send("انتحار")
    assert transcript.state.data["intake_draft"] == draft


@pytest.mark.parametrize(
    ("said", "opens"),
    [
        ("موظف", True),
        ("أريد التحدث مع موظف لو سمحت", True),
        ("أريد شخص يساعدني", True),  # a configured phrase
        ("I need staff", True),
        ("موظفة", False),  # another word
    ],
)
def test_staff_keywords_in_the_menu(said: str, opens: bool) -> None:
    transcript = Transcript(SETTINGS, state=ConversationState("menu", "choose"))
    transcript.send(said)
    assert (transcript.handoffs == [OpenHandoff("keyword")]) is opens


def test_a_keyword_in_a_rating_comment_is_just_a_comment() -> None:
    transcript = Transcript(
        SETTINGS, state=ConversationState("rating", "comment", {"rating_score": 4})
    )
    transcript.send("الموظف كان متعاوناً جداً")
    assert transcript.handoffs == []
    assert transcript.ratings[0].comment == "الموظف كان متعاوناً جداً"
