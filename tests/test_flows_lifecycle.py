"""A request's life: which status moves staff may make, what the beneficiary is told, and
answering staff's question (needs_info)."""

import re

import pytest
from transcript import AUDIO, PDF, PHOTO, START, Transcript, play

import flows
from flows.lifecycle import ALLOWED, STATUSES, canonical_status, transition_problem
from flows.types import (
    BUILT_IN_NOTICE,
    AddCaseNote,
    ConversationState,
    FlowSettings,
    Language,
    Media,
    RequestSummary,
)

# The lifecycle as the product describes it, written out again rather than imported.
NEXT = {
    "submitted": {"under_review", "needs_info", "rejected", "closed"},
    "under_review": {"needs_info", "accepted", "rejected", "closed"},
    "needs_info": {"under_review", "accepted", "rejected", "closed"},
    "accepted": {"delivered", "closed"},
    "rejected": {"under_review", "closed"},
    "delivered": {"closed"},
    "closed": set(),
}
ALL_PAIRS = [(current, target) for current in NEXT for target in NEXT]


def _expected_problem(current: str, target: str) -> str | None:
    if target in NEXT[current]:
        return None
    if target == current:
        return f"the request is already {current}"
    if current == "closed":
        return f"cannot go from closed to {target}: a closed request cannot change"
    allowed = ", ".join(s for s in STATUSES if s in NEXT[current])
    return f"cannot go from {current} to {target}: allowed next statuses are {allowed}"


# --- which moves are allowed ---


def test_the_statuses_and_their_order() -> None:
    assert tuple(NEXT) == STATUSES
    assert {status: set(after) for status, after in ALLOWED.items()} == NEXT


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s)
def test_every_move_is_allowed_or_says_why(current: str, target: str) -> None:
    assert transition_problem(current, target, "ما مصدر دخل الأسرة؟") == _expected_problem(
        current, target
    )


def test_the_reasons_read_as_the_staff_guide_says() -> None:
    assert (
        transition_problem("accepted", "submitted")
        == "cannot go from accepted to submitted: allowed next statuses are delivered, closed"
    )
    assert transition_problem("accepted", "accepted") == "the request is already accepted"
    assert transition_problem("rejected", "under_review") is None  # an appeal


@pytest.mark.parametrize("current", ["submitted", "under_review"])
@pytest.mark.parametrize("note", [None, "", "   \n"])
def test_needs_info_needs_the_question(current: str, note: str | None) -> None:
    assert (
        transition_problem(current, "needs_info", note)
        == "needs_info needs a question for the beneficiary (--note)"
    )
    assert transition_problem(current, "needs_info", note="هل لديك صك إعالة؟") is None


def test_a_note_is_optional_for_every_other_move() -> None:
    assert all(
        transition_problem(current, target) is None
        for current, targets in NEXT.items()
        for target in targets
        if target != "needs_info"
    )


@pytest.mark.parametrize("target", ["foo", "", "Accepted", "مقبول"])
def test_an_unknown_target_lists_the_statuses(target: str) -> None:
    assert transition_problem("submitted", target) == (
        f"unknown status {target!r}: one of submitted, under_review, needs_info, "
        "accepted, rejected, delivered, closed"
    )


@pytest.mark.parametrize("current", ["archived", "", None, ["submitted"], 3])
def test_an_unknown_stored_status_is_refused_without_raising(current: object) -> None:
    problem = transition_problem(current, "closed")  # type: ignore[arg-type]
    assert problem is not None and problem.startswith("the request has an unknown status")


@pytest.mark.parametrize(
    ("typed", "status"),
    [
        ("under_review", "under_review"),
        ("Under-Review", "under_review"),
        (" ACCEPTED ", "accepted"),
        ("needs info", "needs_info"),
        ("approved", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_status_reads_what_staff_type(typed: object, status: str | None) -> None:
    assert canonical_status(typed) == status


# --- what the beneficiary is told ---

REFERENCE = "REQ-000123"
QUESTION = "هل لديك صك إعالة للأبناء؟"
REASON = "الدخل الشهري أعلى من حد الاستحقاق"
SETTINGS = FlowSettings(handoff_keywords=("موظف", "staff"))
# What each notice must say, in each language (beyond the reference).
SAYS: dict[str, dict[Language, str]] = {
    "submitted": {"ar": "استلمنا الطلب", "en": "we received it"},
    "under_review": {"ar": "بدأت لجنة البحث دراسة الطلب", "en": "research committee has started"},
    "needs_info": {"ar": "نحتاج منك معلومات إضافية", "en": "we need more information"},
    "accepted": {
        "ar": "وافقت اللجنة على الطلب. سيتواصل معك الباحث الاجتماعي لتحديد موعد الاستلام.",
        "en": "the committee accepted it",
    },
    "rejected": {"ar": "نعتذر إليك", "en": "we are sorry"},
    "delivered": {"ar": "تم تسليم الدعم، شكراً لك", "en": "support has been delivered"},
    "closed": {"ar": "أُغلق الطلب", "en": "the request is now closed"},
}
PHONE_LENGTH = 320  # a notice (without a long note) fits two SMS-sized screens


@pytest.mark.parametrize("language", ["ar", "en"])
@pytest.mark.parametrize("status", STATUSES)
def test_every_status_has_a_short_notice(language: Language, status: str) -> None:
    (notice,) = flows.status_notice(language, REFERENCE, status, None, SETTINGS)
    assert notice.language == language
    assert notice.text.startswith(
        "تحديث على طلبك REQ-000123: " if language == "ar" else "Update on your request REQ-000123: "
    )
    assert SAYS[status][language] in notice.text
    assert len(notice.text) <= PHONE_LENGTH
    assert notice.choices == () and notice.template is None


@pytest.mark.parametrize("status", STATUSES)
def test_the_arabic_notice_has_no_english_but_the_reference(status: str) -> None:
    note = REASON if status != "needs_info" else QUESTION
    (notice,) = flows.status_notice("ar", REFERENCE, status, note, SETTINGS)
    without_reference = notice.text.replace(REFERENCE, "")
    assert not re.search("[A-Za-z0-9]", without_reference), without_reference


def test_needs_info_carries_the_question_and_asks_for_the_answer_here() -> None:
    (ar,) = flows.status_notice("ar", REFERENCE, "needs_info", QUESTION, SETTINGS)
    assert f"سؤال الباحث: {QUESTION}" in ar.text
    assert "اكتب إجابتك هنا" in ar.text
    (en,) = flows.status_notice("en", REFERENCE, "needs_info", "Do you have a custody deed?", None)
    assert "The researcher asks: Do you have a custody deed?" in en.text
    assert "Reply here with your answer" in en.text


def test_a_rejection_apologises_gives_the_reason_and_the_word_for_a_person() -> None:
    (with_reason,) = flows.status_notice("ar", REFERENCE, "rejected", REASON, SETTINGS)
    assert f"السبب: {REASON}" in with_reason.text
    assert "أرسل «موظف» ليتواصل معك أحد الموظفين" in with_reason.text
    (without,) = flows.status_notice("en", REFERENCE, "rejected", "  ", SETTINGS)
    assert "Reason" not in without.text
    assert 'send "staff"' in without.text


@pytest.mark.parametrize("status", ["under_review", "accepted", "delivered", "closed"])
def test_other_notices_show_a_note_only_when_given(status: str) -> None:
    (noted,) = flows.status_notice("ar", REFERENCE, status, "موعد الاستلام يوم الأحد", SETTINGS)
    assert "ملاحظة: موعد الاستلام يوم الأحد" in noted.text
    (plain,) = flows.status_notice("ar", REFERENCE, status, None, SETTINGS)
    assert "ملاحظة" not in plain.text


@pytest.mark.parametrize(
    ("language", "reference", "status", "note"),
    [
        ("fr", REFERENCE, "accepted", None),
        ("ar", None, "accepted", None),
        ("ar", REFERENCE, "archived", None),
        ("ar", REFERENCE, None, 42),
    ],
)
def test_odd_values_still_give_a_notice(
    language: object, reference: object, status: object, note: object
) -> None:
    (notice,) = flows.status_notice(language, reference, status, note, SETTINGS)  # type: ignore[arg-type]
    assert notice.language == "ar"
    assert notice.text.startswith("تحديث على طلبك")


# --- answering the question ---


def _asked(
    question: str | None = QUESTION, state: ConversationState | None = None, **kwargs: object
) -> Transcript:
    transcript = Transcript(state=state, **kwargs)  # type: ignore[arg-type]
    transcript.staff_asks(REFERENCE, question)
    return transcript


def test_ask_needs_info_waits_for_the_answer_and_keeps_the_draft() -> None:
    draft = {"name": "محمد أحمد"}
    state = ConversationState("intake", "city", {"intake_draft": draft, "bad_answers": 2})
    new = flows.ask_needs_info(state, REFERENCE)
    assert (new.flow, new.step) == ("needs_info", "answer")
    assert new.data["needs_info_reference"] == REFERENCE
    assert new.data["intake_draft"] == draft
    assert "bad_answers" not in new.data


def test_a_text_answer_becomes_a_case_note() -> None:
    transcript = _asked()
    reply = transcript.send("  نعم، لدي صك إعالة صادر من المحكمة  ")
    assert "وصلت إجابتك وأُضيفت إلى ملف طلبك REQ-000123" in reply
    assert transcript.case_notes == [
        AddCaseNote(REFERENCE, "نعم، لدي صك إعالة صادر من المحكمة", ())
    ]
    assert transcript.step == ("menu", "choose")
    assert "needs_info_reference" not in transcript.state.data


def test_files_alone_or_with_a_caption_are_an_answer() -> None:
    transcript = _asked()
    transcript.send("", media=(PHOTO, PDF))
    assert transcript.case_notes == [AddCaseNote(REFERENCE, "", (PHOTO, PDF))]
    captioned = _asked()
    captioned.send("صورة الصك", media=(PHOTO,))
    assert captioned.case_notes == [AddCaseNote(REFERENCE, "صورة الصك", (PHOTO,))]


def test_files_of_other_types_are_left_out_and_said_so() -> None:
    transcript = _asked()
    reply = transcript.send("هذا الصك", media=(PHOTO, AUDIO))
    assert transcript.case_notes == [AddCaseNote(REFERENCE, "هذا الصك", (PHOTO,))]
    assert "لم نُرفق ١ من الملفات لأن نوعها غير مدعوم" in reply


@pytest.mark.parametrize(
    ("said", "media", "reason"),
    [
        ("", (), "اكتب إجابتك نصاً، أو أرسل صورة أو ملف PDF"),
        ("\u200f \u200e", (), "اكتب إجابتك نصاً"),
        ("", (AUDIO,), "لا نقبل هذا النوع من الملفات"),
        ("ا" * 2001, (), "الإجابة طويلة (٢٠٠١ حرف)، والحد الأقصى ٢٠٠٠ حرف"),
        ("ا" * 2001, (PHOTO,), "الحد الأقصى ٢٠٠٠ حرف"),
    ],
)
def test_an_empty_or_too_long_answer_is_refused_with_the_reason(
    said: str, media: tuple[Media, ...], reason: str
) -> None:
    transcript = _asked()
    assert reason in transcript.send(said, media=media)
    assert transcript.case_notes == []
    assert transcript.step == ("needs_info", "answer")


def test_the_longest_answer_is_taken() -> None:
    transcript = _asked()
    transcript.send("ب" * 2000)
    assert len(transcript.case_notes[0].text) == 2000


def test_a_staff_keyword_inside_an_answer_is_part_of_it() -> None:
    transcript = _asked()
    transcript.send("الموظف طلب مني صك الإعالة وهذا هو")
    assert transcript.handoffs == []
    assert len(transcript.case_notes) == 1


def test_zero_leaves_the_question_open_and_the_reference_brings_it_back() -> None:
    waiting = RequestSummary(REFERENCE, "needs_info", "rent", START, START)
    transcript = _asked(requests=[waiting])
    play(
        transcript,
        [
            ("0", ["١- طلب دعم جديد", "ما زال بانتظار إجابتك؛ للإجابة عنه أرسل REQ-000123"]),
            ("REQ-000123", [f"سؤال الباحث: {QUESTION}", "أرسل إجابتك عن سؤال الباحث"]),
            ("لدي صك إعالة", ["وصلت إجابتك"]),
        ],
    )
    assert transcript.case_notes == [AddCaseNote(REFERENCE, "لدي صك إعالة", ())]
    # Answered: the reference shows the status again.
    assert "قيد الدراسة لدى لجنة البحث" in transcript.send("REQ-000123")
    assert transcript.step == ("menu", "choose")


def test_a_question_no_longer_open_shows_the_status_instead() -> None:
    moved_on = RequestSummary(REFERENCE, "accepted", "rent", START, START)
    transcript = _asked(requests=[moved_on])
    transcript.send("0")
    assert "تمت الموافقة" in transcript.send("REQ-000123")
    assert transcript.step == ("menu", "choose")


def test_leaving_keeps_the_intake_draft() -> None:
    draft = {"name": "محمد أحمد"}
    agreed = {"version": BUILT_IN_NOTICE}  # the privacy notice agreed before the draft
    data = {"intake_draft": draft, "consent": agreed}
    transcript = _asked(state=ConversationState("intake", "city", data))
    reply = transcript.send("0")
    assert "حفظنا ما أدخلته" not in reply  # said when leaving the intake, not here
    assert transcript.state.data["intake_draft"] == draft
    assert "هل تتابع من حيث توقفت" in transcript.send("1")
    assert "(٢/٨)" in transcript.send("1")


def test_english_asks_the_question_again_in_english() -> None:
    transcript = _asked("Do you have a custody deed?")
    reply = transcript.send("English")
    assert "The researcher asks: Do you have a custody deed?" in reply
    assert "question about your request REQ-000123" in reply
    assert transcript.step == ("needs_info", "answer")


def test_without_the_question_the_prompt_still_names_the_request() -> None:
    transcript = _asked(None)
    reply = transcript.send("English")
    assert "researcher asks" not in reply and "REQ-000123" in reply


def test_in_a_handoff_the_question_is_remembered_not_taken_over() -> None:
    state = ConversationState("handoff", "waiting", {"handoff_acked": True})
    new = flows.ask_needs_info(state, REFERENCE, QUESTION)
    assert (new.flow, new.step) == ("handoff", "waiting")
    assert new.data["needs_info_reference"] == REFERENCE


@pytest.mark.parametrize("reference", ["", "  ", None, 123])
def test_an_odd_reference_changes_nothing(reference: object) -> None:
    state = ConversationState("menu", "choose", {"x": 1})
    assert flows.ask_needs_info(state, reference) == state  # type: ignore[arg-type]


def test_damaged_stored_state_does_not_raise() -> None:
    state = ConversationState("intake", None, None, "fr")  # type: ignore[arg-type]
    new = flows.ask_needs_info(state, REFERENCE)
    assert (new.flow, new.step, new.language) == ("needs_info", "answer", "ar")


def test_a_step_without_its_reference_goes_back_to_the_menu() -> None:
    transcript = Transcript(state=ConversationState("needs_info", "answer", {}))
    reply = transcript.send("لدي صك إعالة")
    assert "١- طلب دعم جديد" in reply
    assert transcript.case_notes == []
    assert transcript.step == ("menu", "choose")
