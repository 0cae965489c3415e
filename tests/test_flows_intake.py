"""The intake as conversations: a full request in Arabic and in English, every refusal,
drafts, corrections, the language switch and the offer of a person."""

from typing import Any

import pytest
from transcript import AUDIO, PDF, PHOTO, Script, Transcript, play

from flows.types import ConversationState, FlowSettings, Need

SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    needs=(
        Need("food_basket", "سلة غذائية", "Food basket"),
        Need("rent", "إيجار السكن", "Rent"),
        Need("medical", "علاج ودواء", "Medical treatment"),
    ),
)
DESCRIPTION = "أسكن مع أطفالي الأربعة في شقة مستأجرة وزوجي متوفى"
FULL_DRAFT: dict[str, Any] = {
    "name": "محمد أحمد علي الزهراني",
    "national_id": "1000000008",
    "mobile": "+966551234567",
    "city": "جدة",
    "need": "rent",
    "description": DESCRIPTION,
    "documents": [],
    "documents_done": True,
}

ARABIC_ON_WHATSAPP: Script = [
    ("السلام عليكم", ["وعليكم السلام ورحمة الله", "جمعية البر", "١- طلب دعم جديد"]),
    ("١", ["لدراسة طلبك فقط", "جمعية البر", "٥ سنوات", "١- أوافق", "٢- لا أوافق"]),
    ("أوافق", ["(٨ خطوات)", "(١/٨)", "اسمك الرباعي"]),
    ("محمد أحمد علي الزهراني", ["(٢/٨)", "هويتك الوطنية أو الإقامة"]),
    ("١٠٠٠٠٠٠٠٠٩", ["أحد أرقامه مكتوباً خطأً"]),
    ("١٠٠٠٠٠٠٠٠٨", ["(٣/٨)", "هذا الرقم ٠٥٥١٢٣٤٥٦٧", '"نعم"']),
    ("نعم", ["(٤/٨)", "مدينة"]),
    ("جده", ["(٥/٨)", "١- سلة غذائية", "٢- إيجار السكن"]),
    ("٢", ["(٦/٨)", "من ١٠ إلى ١٠٠٠ حرف"]),
    (DESCRIPTION, ["(٧/٨)", "صور المستندات", '"تم"']),
    (("", (PHOTO,)), ["استلمنا ١ من ٥"]),
    (("صورة التقرير", (PDF,)), ["استلمنا ٢ من ٥"]),
    (
        "تم",
        [
            "(٨/٨)",
            "١- الاسم: محمد أحمد علي الزهراني",
            "٢- الهوية: ******0008",
            "٣- الجوال: ٠٥٥١٢٣٤٥٦٧",
            "٤- المدينة: جدة",
            "٥- نوع الدعم: إيجار السكن",
            "٧- المستندات: ٢",
            "أقر بأن البيانات أعلاه صحيحة، وأتحمل المسؤولية المباشرة عنها",
        ],
    ),
    (
        "نعم",
        [
            "تم استلام طلبك برقم REQ-000001",
            "لجنة البحث",
            "بالقبول أو الاعتذار",
            "لا تقل عن أسبوعين",
            "بعد ٢٥ جمادى الآخرة ١٤٤٨هـ / ٥ ديسمبر ٢٠٢٦م",
            "دون أن تحتاج إلى السؤال",
        ],
    ),
]

ENGLISH_ON_TELEGRAM: Script = [
    ("hi", ["أهلاً بك في جمعية البر"]),
    ("English", ["1- New support request", "4- Talk to a staff member", "عربي"]),
    ("1", ["only to study your request", "1- I agree", "2- I decline"]),
    ("yes", ["(8 steps)", "(1/8)", "four-part name"]),
    ("Mohammed Ahmed Ali Alzahrani", ["(2/8)", "iqama"]),
    ("2000000006", ["(3/8)", "mobile number"]),
    ("+966 55 123 4567", ["(4/8)", "city"]),
    ("Riyadh", ["(5/8)", "1- Food basket"]),
    ("food basket", ["(6/8)"]),
    ("My husband died and I cannot pay for food.", ["(7/8)", '"done"']),
    (
        "done",
        [
            "(8/8)",
            "2- ID: ******0006",
            "3- Mobile: 0551234567",
            "4- City: Riyadh",
            "5- Support needed: Food basket",
            "7- Documents: none",
            "directly responsible",
        ],
    ),
    (
        "yes",
        [
            "REQ-000001",
            "research committee",
            "no less than two weeks",
            "after 25 Jumada al-Akhirah 1448 AH / 5 December 2026",
        ],
    ),
]


def test_full_intake_in_arabic_ends_with_a_reference_and_both_calendars() -> None:
    transcript = Transcript(SETTINGS, channel="whatsapp", sender_phone="+966551234567")
    play(transcript, ARABIC_ON_WHATSAPP)
    (saved,) = transcript.saved
    assert dict(saved.answers) == {**{k: v for k, v in FULL_DRAFT.items() if k[:4] != "docu"}}
    assert [d.content_type for d in saved.documents] == ["image/jpeg", "application/pdf"]
    assert saved.signed_at == transcript.now
    assert (saved.decision_due_at - saved.signed_at).days == 14
    assert transcript.step == ("menu", "choose")
    assert "intake_draft" not in transcript.state.data
    assert "reference" not in transcript.state.data


def test_full_intake_in_english() -> None:
    transcript = Transcript(SETTINGS, channel="telegram")
    play(transcript, ENGLISH_ON_TELEGRAM)
    (saved,) = transcript.saved
    assert saved.answers["national_id"] == "2000000006"
    assert saved.answers["city"] == "الرياض"
    assert saved.answers["need"] == "food_basket"
    assert transcript.state.language == "en"


def test_decision_days_other_than_fourteen_are_said_in_days() -> None:
    settings = FlowSettings(needs=SETTINGS.needs, decision_days=20)
    transcript = _at_step("summary", dict(FULL_DRAFT), settings=settings)
    reply = transcript.send("نعم")
    assert "لا تقل عن ٢٠ يوماً" in reply
    assert (transcript.saved[0].decision_due_at - transcript.now).days == 20


def _at_step(
    step: str,
    draft: dict[str, Any],
    *,
    settings: FlowSettings = SETTINGS,
    language: str = "ar",
    channel: str = "whatsapp",
    sender_phone: str | None = None,
) -> Transcript:
    # The privacy notice already agreed to, as an intake that reached ``step`` would have.
    data = {"intake_draft": draft, "consent": {"version": settings.notice_version}}
    state = ConversationState("intake", step, data, language)  # type: ignore[arg-type]
    return Transcript(settings, channel=channel, sender_phone=sender_phone, state=state)


def _draft_before(step: str) -> dict[str, Any]:
    order = ["name", "national_id", "mobile", "city", "need", "description"]
    keep = order[: order.index(step)] if step in order else order
    draft = {k: FULL_DRAFT[k] for k in keep}
    if step == "summary":
        draft |= {"documents": [], "documents_done": True}
    return draft


REFUSALS = [
    ("name", "محمد", "يُرجى إرسال الاسم الرباعي كاملاً"),
    ("name", "محمد أحمد", "ثلاثة أجزاء على الأقل"),
    ("name", "محمد 123", "بالحروف فقط"),
    ("name", "ا " * 60, "أطول من ١٠٠ حرف"),
    ("name", "", "يُرجى إرسال الاسم الرباعي كاملاً"),
    ("national_id", "1000000009", "أحد أرقامه مكتوباً خطأً"),
    ("national_id", "100000000", "عدد الأرقام المرسلة ٩"),
    ("national_id", "abcdefghij", "يتكون من أرقام فقط"),
    ("national_id", "3000000004", "يبدأ بـ١، ورقم الإقامة يبدأ بـ٢"),
    ("mobile", "+447700900123", "أرسل رقم جوال سعودياً يبدأ بـ٠٥"),
    ("mobile", "0112925559", "هذا ليس رقم جوال"),
    ("mobile", "غير متوفر", "لم نتعرف على الرقم"),
    ("city", "12345", "اكتب اسم مدينتك بالحروف"),
    ("need", "7", "أرسل رقماً من ١ إلى ٣"),
    ("need", "سيارة", "أرسل رقماً من ١ إلى ٣"),
    ("description", "", "قصير جداً"),
    ("description", "ا" * 5000, "(٥٠٠٠ حرف)، والحد الأقصى ١٠٠٠ حرف"),
    ("documents", "مرحبتين", "أرسل صورة أو ملف PDF"),
    ("summary", "9", "رقم الحقل من ١ إلى ٧"),
    ("summary", "ربما", "رقم الحقل من ١ إلى ٧"),
    ("summary", "تمام", 'أرسل "نعم" للتوقيع'),  # signing needs an explicit yes
]


@pytest.mark.parametrize(("step", "said", "reason"), REFUSALS)
def test_an_invalid_answer_gets_its_reason_and_the_same_step(
    step: str, said: str, reason: str
) -> None:
    transcript = _at_step(step, _draft_before(step))
    draft_before = dict(transcript.state.data["intake_draft"])
    reply = transcript.send(said)
    assert reason in reply
    assert transcript.step == ("intake", step)
    assert transcript.state.data["intake_draft"] == draft_before
    assert transcript.saved == []


def test_a_foreign_number_is_refused_in_english_too() -> None:
    transcript = _at_step("mobile", _draft_before("mobile"), language="en")
    assert "Please send a Saudi mobile number starting with 05" in transcript.send("+447700900123")


def test_a_refused_file_type_keeps_the_documents_step() -> None:
    transcript = _at_step("documents", _draft_before("documents"))
    reply = transcript.send("", media=(AUDIO,))
    assert "لا نقبل هذا النوع من الملفات" in reply
    assert transcript.step == ("intake", "documents")
    assert "documents" not in transcript.state.data["intake_draft"]


def test_at_most_five_documents_are_kept() -> None:
    transcript = _at_step("documents", _draft_before("documents"))
    transcript.send("", media=(PHOTO,) * 4)
    reply = transcript.send("", media=(PHOTO, PDF))
    assert "استلمنا ٥ من ٥" in reply
    assert "الحد الأقصى (٥ مستندات)" in reply
    assert len(transcript.state.data["intake_draft"]["documents"]) == 5


def test_documents_on_a_text_only_channel_say_so_and_none_is_fine() -> None:
    transcript = _at_step("description", _draft_before("description"), channel="sms")
    assert "هذه القناة لا تستقبل الملفات" in transcript.send(DESCRIPTION)
    assert "(٨/٨)" in transcript.send("لا يوجد")
    assert transcript.state.data["intake_draft"]["documents"] == []


def test_a_mobile_is_asked_when_the_sender_has_none_and_stored_as_e164() -> None:
    transcript = _at_step("national_id", _draft_before("national_id"), channel="web")
    assert "ما رقم جوالك" in transcript.send("1000000008")
    transcript.send("٠٥٠ ١٢٣ ٤٥٦٧")
    assert transcript.state.data["intake_draft"]["mobile"] == "+966501234567"


def test_another_number_than_the_sender_s_can_be_given() -> None:
    transcript = _at_step("mobile", _draft_before("mobile"), sender_phone="+966551234567")
    assert "اكتب رقم الجوال" in transcript.send("لا")
    assert transcript.step == ("intake", "mobile")
    assert "(٤/٨)" in transcript.send("0501234567")
    assert transcript.state.data["intake_draft"]["mobile"] == "+966501234567"


def test_zero_cancels_keeps_the_draft_and_offers_to_continue() -> None:
    transcript = Transcript(SETTINGS)
    play(
        transcript,
        [
            ("١", ["لدراسة طلبك فقط"]),
            ("أوافق", ["(١/٨)"]),
            ("محمد أحمد علي الزهراني", ["(٢/٨)"]),
            ("٠", ["حفظنا ما أدخلته", "١- طلب دعم جديد"]),
            ("١", ["طلب دعم لم يكتمل", "١- المتابعة من حيث توقفت", "٢- البدء من جديد"]),
            ("٣", ["أرسل ١ للمتابعة من حيث توقفت، أو ٢ للبدء من جديد"]),
            ("١", ["(٢/٨)"]),
        ],
    )
    assert transcript.state.data["intake_draft"] == {"name": "محمد أحمد علي الزهراني"}


def test_start_over_clears_the_draft() -> None:
    transcript = Transcript(SETTINGS)
    play(
        transcript,
        [
            ("1", ["لدراسة طلبك فقط"]),
            ("أوافق", ["(١/٨)"]),
            ("محمد أحمد علي الزهراني", ["(٢/٨)"]),
            ("القائمة", ["حفظنا ما أدخلته"]),
            ("1", ["طلب دعم لم يكتمل"]),
            ("البدء من جديد", ["(٨ خطوات)", "(١/٨)"]),
        ],
    )
    assert transcript.state.data["intake_draft"] == {}


def test_a_half_done_intake_resumes_after_a_restart() -> None:
    first = _at_step("city", _draft_before("city"))
    first.send("جدة")
    # A new process: only the stored state survives.
    second = Transcript(SETTINGS, state=first.state, now=first.now)
    assert "(٦/٨)" in second.send("٣")
    assert second.state.data["intake_draft"]["need"] == "medical"


@pytest.mark.parametrize(("hours", "asks"), [(13, True), (11, False)])
def test_coming_back_after_twelve_hours_asks_continue_or_start_over(hours: int, asks: bool) -> None:
    transcript = Transcript(SETTINGS)
    play(transcript, [("1", []), ("أوافق", []), ("محمد أحمد علي الزهراني", ["(٢/٨)"])])
    transcript.advance(hours=hours)
    reply = transcript.send("1000000008")
    assert ("طلب دعم لم يكتمل" in reply) is asks
    assert ("national_id" in transcript.state.data["intake_draft"]) is not asks
    if asks:
        assert "(٢/٨)" in transcript.send("1")


def test_a_field_is_corrected_from_the_summary() -> None:
    transcript = _at_step("summary", dict(FULL_DRAFT))
    play(
        transcript,
        [
            ("٤", ["(٤/٨)", "مدينة"]),
            ("الرياض", ["(٨/٨)", "٤- المدينة: الرياض", "١- الاسم: محمد أحمد علي الزهراني"]),
            ("٧", ["(٧/٨)"]),
            (("", (PHOTO,)), ["استلمنا ١ من ٥"]),
            ("done", ["(٨/٨)", "٧- المستندات: ١"]),
            ("أوافق", ["REQ-000001"]),
        ],
    )
    assert transcript.saved[0].answers["city"] == "الرياض"
    assert len(transcript.saved[0].documents) == 1


def test_language_switch_mid_intake_asks_the_same_question_again() -> None:
    transcript = _at_step("national_id", _draft_before("national_id"))
    play(
        transcript,
        [
            ("English", ["(2/8) What is your national ID or iqama number?"]),
            ("123", ["The ID number has 10 digits; you sent 3."]),
            ("عربي", ["(٢/٨) ما رقم هويتك الوطنية أو الإقامة؟"]),
        ],
    )
    assert transcript.step == ("intake", "national_id")
    assert transcript.state.language == "ar"


def test_three_bad_answers_in_a_row_offer_a_staff_member() -> None:
    transcript = _at_step("national_id", _draft_before("national_id"))
    first, second, third = (transcript.send("12345") for _ in range(3))
    assert "موظف" not in first
    assert "موظف" not in second
    assert 'أرسل "موظف" ليتواصل معك أحد الموظفين' in third
    transcript.send("موظف")
    assert transcript.step == ("handoff", "waiting")
    assert transcript.handoffs[-1].reason == "field_errors"
    assert transcript.state.data["intake_draft"] == _draft_before("national_id")


def test_the_offer_names_the_configured_keyword() -> None:
    settings = FlowSettings(needs=SETTINGS.needs, handoff_keywords=("مساعد", "agent"))
    transcript = _at_step("city", _draft_before("city"), settings=settings, language="en")
    replies = [transcript.send("1") for _ in range(3)]
    assert 'send "agent"' in replies[2]


def test_a_good_answer_resets_the_count_of_bad_ones() -> None:
    transcript = _at_step("national_id", _draft_before("national_id"))
    transcript.send("1")
    transcript.send("1")
    transcript.send("1000000008")
    replies = [transcript.send("+447700900123") for _ in range(2)]
    assert all("موظف" not in reply for reply in replies)


def test_a_staff_keyword_inside_a_description_is_just_a_description() -> None:
    transcript = _at_step("description", _draft_before("description"))
    reply = transcript.send("أخي موظف لكنه لا يساعدنا في مصاريف البيت")
    assert "(٧/٨)" in reply
    assert transcript.handoffs == []


def test_a_staff_keyword_alone_in_a_free_text_step_opens_a_handoff() -> None:
    transcript = _at_step("name", {})
    assert "أبلغنا أحد موظفي علاقات المستفيدين" in transcript.send("موظف")
    assert transcript.handoffs[-1].reason == "keyword"


def test_a_photo_after_a_long_pause_is_kept() -> None:
    transcript = _at_step("documents", _draft_before("documents"))
    transcript.send("مرحبتين")  # records last_seen
    transcript.advance(hours=20)
    assert "استلمنا ١ من ٥" in transcript.send("", media=(PHOTO,))
