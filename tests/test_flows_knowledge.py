"""Inquiries in the conversation: answers, "did you mean", "no" and a person, and what wins."""

from __future__ import annotations

from transcript import INTAKE_AR, Transcript

from bench.knowledge import example_index
from flows.types import FlowSettings, OpenHandoff, RecordUnanswered

SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    crisis_words=("انتحار",),
    hotline_text="اتصل بالطوارئ ٩١١",
    phone="920012345",
)


def talk() -> Transcript:
    transcript = Transcript(SETTINGS, knowledge=example_index())
    transcript.send("السلام عليكم")
    return transcript


def unanswered(transcript: Transcript) -> list[str]:
    return [e.question for e in transcript.effects if isinstance(e, RecordUnanswered)]


def test_a_question_at_the_menu_gets_its_answer_and_is_asked_about() -> None:
    transcript = talk()
    reply = transcript.send("وش الاوراق اللي تبونها؟")
    assert "صورة الهوية الوطنية" in reply
    assert "هل أجاب هذا عن سؤالك؟" in reply
    (answer,) = transcript.replies
    assert [c.payload for c in answer.choices] == ["yes", "no"] and answer.inline
    assert transcript.step == ("knowledge", "helpful")
    assert "يسعدنا ذلك" in transcript.send("نعم")
    assert unanswered(transcript) == []


def test_placeholders_carry_the_configured_values() -> None:
    transcript = talk()
    reply = transcript.send("وين مقر الجمعية")
    assert "جمعية البر" in reply and "920012345" in reply and "{" not in reply


def test_no_offers_a_person_and_counts_the_question() -> None:
    transcript = talk()
    transcript.send("متى توزيع السلال؟")
    reply = transcript.send("لا")
    assert "هل تود التحدث مع موظف؟" in reply
    assert unanswered(transcript) == ["متى توزيع السلال؟"]
    transcript.send("١")
    assert transcript.step == ("handoff", "waiting")
    assert [h.reason for h in transcript.handoffs] == ["requested"]


def test_a_did_you_mean_choice_by_number_gives_the_entry() -> None:
    transcript = talk()
    reply = transcript.send("عنوانكم لو سمحت")
    assert "هل تقصد أحد هذه الأسئلة؟" in reply
    assert transcript.step == ("knowledge", "choose")
    labels = [c.label for c in transcript.replies[0].choices]
    number = labels.index("أين مقر الجمعية؟") + 1
    answer = transcript.send(str(number))
    assert "حي النسيم" in answer and "هل أجاب هذا عن سؤالك؟" in answer
    transcript.send(str(len(labels)))  # "none of these" is the last choice, not here
    assert transcript.step != ("knowledge", "choose")


def test_none_of_these_offers_a_person_and_counts_the_question() -> None:
    transcript = talk()
    transcript.send("عنوانكم لو سمحت")
    labels = [c.label for c in transcript.replies[0].choices]
    assert "هل تود التحدث مع موظف؟" in transcript.send(str(len(labels)))
    assert unanswered(transcript) == ["عنوانكم لو سمحت"]


def test_option_5_asks_and_nothing_found_offers_a_person() -> None:
    transcript = talk()
    assert "اكتب سؤالك" in transcript.send("٥")
    reply = transcript.send("كيف اطبخ الكبسة باللحم")
    assert "لم نجد إجابة لسؤالك" in reply
    assert unanswered(transcript) == ["كيف اطبخ الكبسة باللحم"]
    assert "اكتب سؤالك" in transcript.send("٢")  # another question


def test_a_crisis_word_inside_a_question_opens_the_urgent_handoff() -> None:
    transcript = talk()
    reply = transcript.send("وش الاوراق المطلوبة؟ افكر في الانتحار")
    assert "٩١١" in reply
    assert transcript.handoffs == [OpenHandoff("crisis", urgent=True)]


def test_a_digit_at_the_menu_is_a_menu_choice_and_a_name_in_intake_is_a_name() -> None:
    transcript = talk()
    transcript.send("١")
    assert "(١/٨)" in transcript.send("أوافق")
    # A name that happens to share words with the base is still a name.
    assert "(٢/٨)" in transcript.send("أوراق الجمعية الدوام")
    assert transcript.step == ("intake", "national_id")


def test_a_question_where_a_step_cannot_use_it_is_answered_and_the_step_asked_again() -> None:
    transcript = talk()
    for line in INTAKE_AR[1:7]:
        transcript.send(line)
    assert transcript.step == ("intake", "need")
    reply = transcript.send("وش الاوراق اللي تبونها؟")
    assert "صورة الهوية الوطنية" in reply
    assert "(٥/٨)" in reply  # the need question again
    assert transcript.step == ("intake", "need")
    assert "(٦/٨)" in transcript.send("١")


def test_free_text_nobody_can_answer_is_still_misunderstood_at_the_menu() -> None:
    transcript = talk()
    assert "لم أفهم رسالتك" in transcript.send("زززز")
    assert unanswered(transcript) == []
    assert "لم أفهم" in transcript.send("اسعار الذهب اليوم بالريال")
    assert transcript.step == ("handoff", "waiting")
    assert unanswered(transcript) == ["اسعار الذهب اليوم بالريال"]


def test_without_a_base_the_menu_behaves_as_before() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("مرحبا")
    assert "لم أفهم رسالتك" in transcript.send("وش الاوراق اللي تبونها؟")


def test_english_question_answered_in_english() -> None:
    transcript = talk()
    reply = transcript.send("what documents do I need?")
    assert "national ID" in reply and "Did this answer your question?" in reply
    assert "Yes" in reply


def test_no_to_a_person_and_thanks_are_not_counted_as_questions() -> None:
    transcript = talk()
    transcript.send("٥")
    transcript.send("كيف اطبخ الكبسة باللحم")
    assert "اكتب سؤالك" in transcript.send("لا")  # no person, thanks: ask another
    assert "العفو" in transcript.send("شكرا")
    assert unanswered(transcript) == ["كيف اطبخ الكبسة باللحم"]
    assert transcript.handoffs == []


def test_a_menu_number_an_answer_names_is_the_menu_s_at_its_question() -> None:
    transcript = talk()
    reply = transcript.send("عندي شكوى")
    assert "أرسل ٦" in reply and "هل أجاب هذا عن سؤالك؟" in reply
    assert "شكوى" in transcript.send("٦")  # the feedback flow, not "write your question"
    assert transcript.step[0] == "feedback"
    transcript = talk()
    transcript.send("وش الاوراق اللي تبونها؟")
    transcript.send("٤")  # "send 4 to talk to a staff member"
    assert transcript.step == ("handoff", "waiting")
    assert [h.reason for h in transcript.handoffs] == ["requested"]


def test_a_menu_number_after_write_your_question_is_the_menu_s_with_the_requests() -> None:
    transcript = talk()
    for line in INTAKE_AR[1:]:
        transcript.send(line)  # a request filed: REQ-000001
    transcript.send("٥")
    assert transcript.step == ("knowledge", "ask")
    assert "REQ-000001" in transcript.send("٢")  # the requests loaded for the menu's option
    assert transcript.step == ("menu", "choose")  # where the list leaves the conversation


def test_one_and_two_still_answer_did_this_help() -> None:
    transcript = talk()
    transcript.send("وش الاوراق اللي تبونها؟")
    assert "هل تود التحدث مع موظف؟" in transcript.send("٢")
    assert transcript.step == ("knowledge", "offer")
    transcript.send("٢")  # another question
    assert transcript.step == ("knowledge", "ask")


def test_a_question_as_the_very_first_message_is_welcomed_and_answered() -> None:
    transcript = Transcript(SETTINGS, knowledge=example_index())
    reply = transcript.send("وش الاوراق اللي تبونها؟")  # no greeting first
    welcome, answer = transcript.replies
    assert "أهلاً بك في جمعية البر" in welcome.text and welcome.choices
    assert "صورة الهوية الوطنية" in answer.text and "هل أجاب هذا عن سؤالك؟" in reply
    assert transcript.step == ("knowledge", "helpful")


def test_a_first_message_the_base_does_not_know_is_welcomed_and_not_counted() -> None:
    transcript = Transcript(SETTINGS, knowledge=example_index())
    transcript.send("زززز")
    (welcome,) = transcript.replies
    assert "أهلاً بك في جمعية البر" in welcome.text
    assert transcript.step == ("menu", "choose") and unanswered(transcript) == []
    assert "misunderstood" not in transcript.state.data
