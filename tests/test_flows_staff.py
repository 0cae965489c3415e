"""The staff side as beneficiaries and staff see it: relayed replies, taking and closing a
handoff (then rating it), and the staff group's texts."""

import string

import pytest
from transcript import Transcript

import flows
from flows.catalogue import CATALOGUE
from flows.types import (
    ConversationState,
    FlowSettings,
    Language,
    Need,
    RecordRating,
    RequestCallback,
)

IN_HANDOFF = ConversationState("handoff", "waiting", {"handoff_acked": True})


# --- relaying and taking ---


@pytest.mark.parametrize(
    ("language", "role", "label"),
    [
        ("ar", "agent", "👤 موظف علاقات المستفيدين: "),
        ("en", "agent", "👤 Beneficiary relations officer: "),
        ("ar", "researcher", "👤 الباحث الاجتماعي: "),
        ("en", "researcher", "👤 Social researcher: "),
        ("ar", "manager", "👤 إدارة الجمعية: "),
        ("en", "admin", "👤 The charity's management: "),
    ],
)
def test_staff_words_are_relayed_as_written_after_who_wrote_them(
    language: Language, role: str, label: str
) -> None:
    words = "أهلاً أم خالد، هل وصلك {اتصال} الباحث؟ 100%"
    reply = flows.staff_reply(language, words, role)
    assert reply.text == label + words
    assert reply.language == language and reply.choices == ()
    # The website chat shows them apart from the bot's, under that label.
    assert flows.staff_author(reply.text) == (label.removeprefix("👤 ")[:-2], words)


def test_the_bots_own_words_have_no_author() -> None:
    assert flows.staff_author(flows.handoff_taken("ar").text) is None
    assert flows.staff_author("موظف علاقات المستفيدين: مرحباً") is None  # no person's mark
    assert flows.staff_author("👤 الباحث الاجتماعي: ") is None  # no words


def test_odd_values_from_the_engine_do_not_raise() -> None:
    reply = flows.staff_reply("fr", None, "janitor")  # type: ignore[arg-type]
    assert reply.language == "ar" and reply.text.startswith("👤 موظف علاقات المستفيدين:")
    assert flows.handoff_taken("xx").language == "ar"  # type: ignore[arg-type]


def test_taking_a_handoff_tells_the_beneficiary_someone_is_there() -> None:
    assert "معك الآن أحد موظفي علاقات المستفيدين" in flows.handoff_taken("ar").text
    assert "staff member is with you now" in flows.handoff_taken("en").text


# --- closing, then rating the conversation ---


def test_closing_thanks_and_offers_the_handoff_rating() -> None:
    transcript = Transcript(state=IN_HANDOFF)
    reply = transcript.staff_closes()
    assert "أنهى الموظف المحادثة. شكراً لتواصلك معنا." in reply
    assert "نرجو تقييم محادثتك مع موظفنا" in reply
    assert "أو ٠ للعودة إلى القائمة دون تقييم" in reply
    (offer,) = transcript.replies
    assert offer.inline
    assert [c.payload for c in offer.choices] == ["1", "2", "3", "4", "5"]
    assert transcript.step == ("rating", "score")
    assert transcript.state.data["rating_context"] == "handoff"
    assert "handoff_acked" not in transcript.state.data


def test_a_tap_on_four_records_the_handoff_rating() -> None:
    transcript = Transcript(state=IN_HANDOFF)
    transcript.staff_closes()
    assert "هل تود إضافة ملاحظة" in transcript.send(payload="4")
    assert "شكراً لتقييمك" in transcript.send("تخطي")
    assert transcript.ratings == [RecordRating(4, None, "handoff")]
    assert transcript.callbacks == []
    assert transcript.step == ("menu", "choose")


def test_a_low_handoff_rating_asks_staff_to_call_back() -> None:
    transcript = Transcript(state=ConversationState("handoff", "waiting", {}, "en"))
    reply = transcript.staff_closes()
    assert "Our staff member has closed the conversation" in reply
    transcript.send("2")
    assert "A staff member will contact you" in transcript.send("skip")
    assert transcript.callbacks == [RequestCallback(2, "handoff")]


def test_zero_instead_of_a_score_goes_to_the_menu_without_a_rating() -> None:
    transcript = Transcript(state=IN_HANDOFF)
    transcript.staff_closes()
    assert "١- طلب دعم جديد" in transcript.send("0")
    assert transcript.ratings == []
    assert transcript.closed_handoffs == 0  # staff closed it already; nothing to close again
    assert transcript.step == ("menu", "choose")


def test_closing_keeps_an_intake_draft() -> None:
    draft = {"name": "محمد أحمد"}
    state = ConversationState("handoff", "waiting", {"intake_draft": draft})
    new, _ = flows.close_handoff(state)
    assert new.data["intake_draft"] == draft


@pytest.mark.parametrize(
    "state",
    [
        ConversationState("menu", "choose"),  # the beneficiary left with 0 already
        ConversationState("intake", "city", {"intake_draft": {"name": "محمد أحمد"}}),
    ],
)
def test_closing_a_handoff_the_beneficiary_already_left_says_nothing(
    state: ConversationState,
) -> None:
    assert flows.close_handoff(state) == (state, ())


def test_closing_damaged_state_does_not_raise() -> None:
    state = ConversationState("handoff", "waiting", None, "fr")  # type: ignore[arg-type]
    new, (offer,) = flows.close_handoff(state)
    assert (new.flow, new.step, new.language) == ("rating", "score", "ar")
    assert offer.language == "ar"


# --- texts for staff ---

STAFF_KEYS = {
    "staff.handoff.new": {"reason", "beneficiary_language", "channel"},
    "staff.handoff.urgent": {"reason", "beneficiary_language", "channel"},
    "staff.button.take": set(),
    "staff.button.close": set(),
    "staff.handoff.taken_by": {"name"},
    "staff.handoff.closed_by": {"name"},
    "staff.handoff.already_taken": {"name"},
    "staff.not_staff": set(),
    "staff.status.done": {"reference", "status"},
    "staff.status.refused": {"reason"},
    "staff.note.done": {"reference"},
    "staff.case.not_found": {"reference"},
    "staff.handoffs.none": set(),
    "staff.handoffs.header": {"count"},
    "staff.usage": set(),
    "staff.beneficiary_says": {"name_or_channel", "text"},
    "staff.request_line": {"reference", "status", "need"},
}
REASONS = ("requested", "keyword", "misunderstood", "field_errors", "crisis", "low_rating")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize(("key", "params"), sorted(STAFF_KEYS.items()))
def test_the_staff_texts_exist_with_named_placeholders(key: str, params: set[str]) -> None:
    assert _placeholders(CATALOGUE[key]["ar"]) == params
    filled = flows.text("ar", key, **dict.fromkeys(params, "X"))
    assert "{" not in filled


def test_no_placeholder_clashes_with_the_arguments_of_text() -> None:
    # flows.text(language, key, **params): a {language} or {key} could never be filled.
    names = {name for entry in CATALOGUE.values() for name in _placeholders(entry["ar"])}
    assert not names & {"language", "key"}


def test_the_arabic_staff_texts_read_as_the_guide_says() -> None:
    assert flows.text("ar", "staff.button.take") == "استلام"
    assert flows.text("ar", "staff.button.close") == "إغلاق"
    assert flows.text("ar", "staff.handoff.taken_by", name="سارة") == "استلمها سارة"
    assert flows.text("ar", "staff.not_staff") == "هذا الأمر للموظفين المسجلين فقط"
    done = flows.text("ar", "staff.status.done", reference="REQ-000123", status="تمت الموافقة")
    assert done == "تم تغيير حالة REQ-000123 إلى تمت الموافقة"
    says = flows.text("ar", "staff.beneficiary_says", name_or_channel="أم خالد", text="شكراً")
    assert says == "أم خالد: شكراً"


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_usage_names_every_command_and_status(language: Language) -> None:
    usage = flows.text(language, "staff.usage")
    for command in ("/case REF", "/status REF STATUS", "/note REF", "/handoffs"):
        assert command in usage
    assert all(status in usage for status in flows.STATUSES)


@pytest.mark.parametrize("reason", REASONS)
def test_every_handoff_reason_has_a_label(reason: str) -> None:
    for language in ("ar", "en"):
        label = flows.reason_label(language, reason)
        assert label.strip() and label != reason
        others = {flows.reason_label(language, r) for r in REASONS if r != reason}
        assert label not in others  # staff must tell the reasons apart


def test_handoff_reasons_read_as_staff_read_them() -> None:
    assert flows.reason_label("ar", "crisis") == "كلمات تدل على أزمة: تواصلوا معه فوراً"
    assert flows.reason_label("en", "low_rating").startswith("Low rating")


def test_a_new_handoff_names_reason_language_and_channel() -> None:
    notice = flows.handoff_notification(
        "ar", reason="requested", urgent=False, beneficiary_language="en", channel="whatsapp"
    )
    assert notice.startswith("📩 طلب تواصل جديد")
    assert "السبب: طلب التحدث مع موظف من القائمة" in notice
    assert "اللغة: الإنجليزية" in notice
    assert "القناة: واتساب" in notice


def test_an_urgent_handoff_is_marked_so() -> None:
    ar = flows.handoff_notification(
        "ar", reason="crisis", urgent=True, beneficiary_language="ar", channel="telegram"
    )
    en = flows.handoff_notification(
        "en", reason="crisis", urgent=True, beneficiary_language="ar", channel="telegram"
    )
    assert ar.startswith("🚨 عاجل") and "تيليجرام" in ar
    assert en.startswith("🚨 URGENT") and "Language: Arabic" in en


def test_unknown_labels_are_shown_as_stored() -> None:
    notice = flows.handoff_notification(
        "fr",  # type: ignore[arg-type]
        reason="survey",
        urgent=False,
        beneficiary_language="ur",
        channel="signal",
    )
    assert "survey" in notice and "ur" in notice and "signal" in notice
    assert flows.channel_label("ar", None) == ""  # type: ignore[arg-type]


def test_a_request_line_for_staff() -> None:
    settings = FlowSettings(needs=(Need("rent", "إيجار السكن", "Rent"),))
    line = flows.request_line("ar", "REQ-000123", "needs_info", "rent", settings)
    assert line == "REQ-000123 — نحتاج منك معلومات إضافية — إيجار السكن"
    other = flows.request_line("en", "REQ-000124", "archived", "zakat", settings)
    assert other == "REQ-000124 — archived — zakat"
