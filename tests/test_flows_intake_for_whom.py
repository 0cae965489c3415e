"""One phone, several applicants: "لمن هذا الطلب؟" as conversations. A sender who filed
before picks an earlier applicant (name and ID filled, shown in the summary to confirm)
or "someone else"; a sender who never filed sees the intake as always."""

import dataclasses
from datetime import UTC, datetime

from transcript import Transcript

import flows
from flows.intake import MAX_APPLICANTS, first_name
from flows.types import (
    Address,
    Applicant,
    ConversationState,
    FlowSettings,
    InboundMessage,
    Need,
)
from flows.validation import check_national_id

# No privacy notice unless a test asks for one: the question is what is looked at here.
SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    notice_version="",
    needs=(
        Need("food_basket", "سلة غذائية", "Food basket"),
        Need("rent", "إيجار السكن", "Rent"),
        Need("medical", "علاج ودواء", "Medical treatment"),
    ),
)
MOTHER = Applicant("فاطمة أحمد علي الزهراني", "1000000008")
SON = Applicant("خالد محمد أحمد الزهراني", "2000000006")
# After the name and ID: the mobile (typed: no sender number), city, need, description,
# no documents; then the summary.
REST = ("٠٥٥١٢٣٤٥٦٧", "جدة", "٢", "أسكن مع أطفالي الأربعة في شقة مستأجرة", "تم")
QUESTION = "لمن هذا الطلب؟"


def chat(*applicants: Applicant, settings: FlowSettings = SETTINGS) -> Transcript:
    transcript = Transcript(settings, channel="telegram", applicants=applicants)
    transcript.send("السلام عليكم")
    return transcript


def test_a_sender_who_never_filed_is_asked_the_name_first() -> None:
    transcript = chat()
    reply = transcript.send("١")
    assert "(١/٨)" in reply and "اسمك الرباعي" in reply and QUESTION not in reply
    assert transcript.step == ("intake", "name")


def test_an_earlier_applicant_fills_the_name_and_id_and_the_summary_shows_them() -> None:
    transcript = chat(MOTHER)
    reply = transcript.send("١")
    assert "(٨ خطوات)" in reply and QUESTION in reply
    assert "١- فاطمة ******0008" in reply and "٢- شخص آخر" in reply
    assert MOTHER.national_id not in reply and "الزهراني" not in reply  # first name, masked ID
    assert "(٣/٨)" in transcript.send("١")  # name and ID skipped: the mobile
    for line in REST:
        summary = transcript.send(line)
    assert "١- الاسم: فاطمة أحمد علي الزهراني" in summary
    assert "٢- الهوية: ******0008" in summary and MOTHER.national_id not in summary
    assert "REQ-000001" in transcript.send("نعم")
    (saved,) = transcript.saved
    assert (saved.answers["name"], saved.answers["national_id"]) == (MOTHER.name, "1000000008")


def test_someone_else_is_asked_the_name_and_id_as_always() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    assert "(١/٨)" in transcript.send("٢")
    assert "(٢/٨)" in transcript.send(SON.name)
    assert "(٣/٨)" in transcript.send("٢٠٠٠٠٠٠٠٠٦")
    for line in REST:
        transcript.send(line)
    transcript.send("نعم")
    assert transcript.saved[0].answers["national_id"] == SON.national_id


def test_a_mother_files_for_herself_for_her_son_then_for_herself_again() -> None:
    transcript = chat()
    transcript.send("١")
    for line in (MOTHER.name, "١٠٠٠٠٠٠٠٠٨", *REST, "نعم"):
        transcript.send(line)
    transcript.send("١")
    transcript.send("شخص آخر")  # the words work as well as the number
    for line in (SON.name, "2000000006", *REST, "نعم"):
        transcript.send(line)
    third = transcript.send("١")
    assert "١- فاطمة ******0008" in third and "٢- خالد ******0006" in third
    assert "٣- شخص آخر" in third
    transcript.send("فاطمة")  # her first name alone names her
    for line in REST:
        transcript.send(line)
    transcript.send("نعم")
    ids = [saved.answers["national_id"] for saved in transcript.saved]
    assert ids == ["1000000008", "2000000006", "1000000008"]


def test_a_button_picks_an_applicant() -> None:
    transcript = chat(MOTHER, SON)
    transcript.send("١")
    choices = transcript.replies[0].choices
    assert [c.payload for c in choices] == ["1", "2", "3"]
    transcript.send(payload="2")
    assert transcript.state.data["intake_draft"] == {
        "name": SON.name,
        "national_id": SON.national_id,
    }
    assert transcript.step == ("intake", "mobile")


def test_a_bad_answer_gets_the_reason_and_the_choices_again_then_a_person_offered() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    reply = transcript.send("٥")
    assert "من ١ إلى ٢" in reply and "١- فاطمة ******0008" in reply
    assert transcript.step == ("intake", "for_whom")
    transcript.send("ربما")
    assert "موظف" in transcript.send("لا أدري")  # the third refusal offers a person
    assert transcript.saved == [] and transcript.step == ("intake", "for_whom")


def test_a_first_name_two_applicants_share_is_asked_again() -> None:
    cousin = Applicant("فاطمة سعد علي القحطاني", "1000000016")
    transcript = chat(MOTHER, cousin)
    transcript.send("١")
    assert "من ١ إلى ٣" in transcript.send("فاطمة")
    assert transcript.step == ("intake", "for_whom")


def test_in_english_and_after_switching_language() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    reply = transcript.send("English")
    assert "Who is this request for?" in reply
    assert "1- فاطمة ******0008" in reply and "2- Someone else" in reply
    assert "(1/8)" in transcript.send("someone else")


def test_after_the_consent_comes_the_question() -> None:
    settings = dataclasses.replace(SETTINGS, notice_version="2026-11")
    transcript = chat(MOTHER, settings=settings)
    reply = transcript.send("١")
    assert "أوافق" in reply and QUESTION not in reply
    assert QUESTION in transcript.send("نعم")
    transcript.send("١")
    transcript.send("٠٥٥١٢٣٤٥٦٧")
    assert transcript.state.data["intake_draft"]["national_id"] == MOTHER.national_id


def test_starting_over_a_draft_asks_the_question_again() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    transcript.send("٢")
    transcript.send("سارة خالد محمد الزهراني")
    transcript.send("٠")
    assert "لديك طلب دعم لم يكتمل" in transcript.send("١")
    assert QUESTION in transcript.send("٢")  # start over
    assert transcript.state.data["intake_draft"] == {}


def test_correcting_the_name_from_the_summary_asks_it() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    transcript.send("١")
    for line in REST:
        transcript.send(line)
    assert "(١/٨)" in transcript.send("١")  # field 1 of the summary
    transcript.send("فاطمة أحمد علي الشهري")
    transcript.send("نعم")
    assert transcript.saved[0].answers["name"] == "فاطمة أحمد علي الشهري"
    assert transcript.saved[0].answers["national_id"] == MOTHER.national_id


def test_at_most_nine_people_are_offered_the_last_first_filed_for() -> None:
    ids = [f"1000000{n:03d}" for n in range(200)]
    valid = [i for i in ids if isinstance(check_national_id(i), str)][:11]
    people = [Applicant(f"شخص{n} أحمد علي", national_id) for n, national_id in enumerate(valid)]
    transcript = chat(*people)
    transcript.send("١")
    choices = transcript.replies[0].choices
    assert len(choices) == MAX_APPLICANTS + 1
    assert choices[0].label.startswith("شخص2 ") and choices[-1].label == "شخص آخر"


def test_first_names() -> None:
    assert first_name("عبد الله محمد علي") == "عبد الله"
    assert first_name("أم محمد الزهراني") == "أم محمد"
    assert first_name("فاطمة أحمد علي") == "فاطمة"
    assert first_name("Fatimah") == "Fatimah"


def test_the_engine_loads_applicants_only_where_the_question_may_come() -> None:
    def loads(flow: str, step: str, text: str = "", payload: str | None = None) -> bool:
        message = InboundMessage(
            Address("whatsapp", "+966551234567"),
            datetime(2026, 11, 21, tzinfo=UTC),
            text=text,
            payload=payload,
        )
        return flows.needs_applicants(ConversationState(flow, step), message)

    assert loads("menu", "choose", "١") and loads("menu", "start", payload="1")
    assert loads("menu", "choose", "طلب دعم جديد") and loads(
        "menu", "choose", "new support request"
    )
    assert loads("intake", "consent", "نعم") and loads("intake", "for_whom", "١")
    assert loads("intake", "continue_or_restart", "٢")
    assert loads("no_such_flow", "x", "1")  # the router sends it to the menu
    assert not loads("menu", "choose", "٢") and not loads("menu", "choose", "السلام عليكم")
    assert not loads("intake", "name", "١") and not loads("intake", "need", "1")
    assert not loads("rating", "score", "1")


def test_someone_else_is_asked_the_applicants_name_and_id() -> None:
    transcript = chat(MOTHER)
    transcript.send("١")
    name = transcript.send("شخص آخر")
    assert "(١/٨) ما الاسم الرباعي لصاحب الطلب؟" in name and "اسمك" not in name
    national_id = transcript.send(SON.name)
    assert "(٢/٨)" in national_id and "الإقامة لصاحب الطلب؟" in national_id
    assert "هويتك" not in national_id
    assert "(٣/٨)" in transcript.send("٢٠٠٠٠٠٠٠٠٦")
    for line in REST:
        transcript.send(line)
    again = transcript.send("١")  # corrected from the summary: still about the applicant
    assert "لصاحب الطلب" in again and "اسمك" not in again
    transcript.send("خالد محمد أحمد الشهري")
    transcript.send("نعم")
    (saved,) = transcript.saved
    assert saved.answers["name"] == "خالد محمد أحمد الشهري"
    assert saved.answers["national_id"] == SON.national_id
    assert "for_someone_else" not in saved.answers
    transcript.send("١")  # the next request starts afresh
    assert transcript.state.data["intake_draft"] == {}


def test_someone_else_in_english_is_asked_about_the_applicant() -> None:
    transcript = chat(MOTHER)
    transcript.send("English")
    transcript.send("1")
    name = transcript.send("someone else")
    assert "(1/8) What is the applicant's full four-part name" in name and "your" not in name
    national_id = transcript.send(SON.name)
    assert "(2/8) What is the applicant's national ID or iqama number?" in national_id


def test_the_sender_is_asked_for_their_own_name_and_id_otherwise() -> None:
    transcript = chat()
    assert "ما اسمك الرباعي؟" in transcript.send("١")
    assert "ما رقم هويتك الوطنية" in transcript.send(MOTHER.name)
    english = chat()
    english.send("English")
    assert "What is your full four-part name" in english.send("1")
    assert "What is your national ID" in english.send(MOTHER.name)
