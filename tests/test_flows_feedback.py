"""Feedback in the conversation (menu option 6): kinds, text and files, the request it is
about, consent to contact, the reference and the deadline, the reply to an answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from transcript import AUDIO, PHOTO, START, Transcript

import flows
from flows.feedback import TEXT_MAX, answer_due, answered
from flows.types import (
    AddFeedbackReply,
    FlowSettings,
    KeepPrivate,
    RequestSummary,
    SaveFeedback,
)

SETTINGS = FlowSettings(organization_name="جمعية البر")


def saved(transcript: Transcript) -> list[SaveFeedback]:
    return [e for e in transcript.effects if isinstance(e, SaveFeedback)]


def own_request(reference: str = "REQ-000007") -> RequestSummary:
    return RequestSummary(reference, "under_review", "rent", START, START + timedelta(days=14))


def test_the_menu_offers_option_6() -> None:
    transcript = Transcript(SETTINGS)
    reply = transcript.send("السلام عليكم")
    assert "٦- مقترح أو شكوى" in reply


def test_a_complaint_over_whatsapp_with_consent_gets_a_reference_and_a_date() -> None:
    transcript = Transcript(SETTINGS, sender_phone="+966501234567", requests=[own_request()])
    transcript.send("السلام عليكم")
    assert "مقترح" in transcript.send("٦")
    assert "شكواك" in transcript.send("٢")
    assert "REQ-000007" in transcript.send("تأخر صرف الإيجار ثلاثة أشهر")
    assert "يتواصل معك" in transcript.send("١")  # about REQ-000007
    reply = transcript.send("١")  # staff may contact
    (effect,) = saved(transcript)
    assert effect.kind == "complaint" and effect.may_contact is True
    assert effect.request_reference == "REQ-000007"
    assert effect.text == "تأخر صرف الإيجار ثلاثة أشهر"
    # Saturday 21 Nov 2026 09:00 Riyadh + 5 working days (Sun-Thu) = Thursday 26 Nov.
    assert effect.due_at is not None and effect.due_at.date() == date(2026, 11, 26)
    assert "FB-000001" in reply and "٥ أيام عمل" in reply
    assert "هـ" in reply and "٢٠٢٦" in reply  # Hijri beside Gregorian
    assert transcript.step == ("menu", "choose")


def test_a_suggestion_over_telegram_keeps_its_photo() -> None:
    transcript = Transcript(SETTINGS, channel="telegram")
    transcript.send("/start")
    transcript.send("English")
    transcript.send("6")
    assert "attach a photo" in transcript.send("1")
    assert "Now please write" in transcript.send("", media=[PHOTO])
    reply = transcript.send("Please deliver baskets to the elderly at home")
    (effect,) = saved(transcript)
    assert effect.kind == "suggestion" and effect.attachments == (PHOTO,)
    assert effect.may_contact is None and effect.request_reference is None
    assert "FB-000001" in reply and "within 5 working days" in reply


def test_thanks_expect_no_answer_date() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.send("٦")
    transcript.send("٣")
    reply = transcript.send("شكراً للأخت أمل على حسن التعامل")
    (effect,) = saved(transcript)
    assert effect.kind == "thanks" and effect.due_at is None
    assert "FB-000001" in reply and "أيام عمل" not in reply


def test_sms_is_not_asked_for_a_photo() -> None:
    transcript = Transcript(SETTINGS, channel="sms", sender_phone="+966501234567")
    transcript.send("السلام عليكم")
    transcript.send("٦")
    assert "صورة" not in transcript.send("١")


@pytest.mark.parametrize(
    ("said", "media", "expected"),
    [
        ("", (), "لم تصلنا كلمات"),
        ("   ", (), "لم تصلنا كلمات"),
        ("", (AUDIO,), "لا نقبل هذا النوع"),
        ("ب" * 5000, (), "الحد الأقصى ٢٠٠٠ حرف"),
    ],
)
def test_bad_text_is_refused_clearly_and_nothing_is_saved(
    said: str, media: tuple, expected: str
) -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.send("٦")
    transcript.send("١")
    assert expected in transcript.send(said, media=media)
    assert saved(transcript) == []
    assert transcript.step == ("feedback", "text")
    transcript.send("ب" * TEXT_MAX)  # the limit itself is accepted
    assert len(saved(transcript)) == 1


def test_only_the_sender_s_own_requests_can_be_named() -> None:
    transcript = Transcript(SETTINGS, requests=[own_request("REQ-000007")])
    transcript.send("السلام عليكم")
    transcript.send("٦")
    transcript.send("١")
    transcript.send("اقتراح")
    assert "أرسل رقم أحد الخيارات" in transcript.send("REQ-000099")  # someone else's
    assert saved(transcript) == []
    transcript.send("REQ-7")
    (effect,) = saved(transcript)
    assert effect.request_reference == "REQ-000007"


def test_the_reply_to_an_answer_lands_in_the_same_feedback() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.state, message = answered(transcript.state, "FB-000004", "سنوفر التوصيل قريباً")
    assert "FB-000004" in message.text and "سنوفر التوصيل" in message.text
    reply = transcript.send("جزاكم الله خيراً", media=[PHOTO])
    (effect,) = [e for e in transcript.effects if isinstance(e, AddFeedbackReply)]
    assert effect == AddFeedbackReply("FB-000004", "جزاكم الله خيراً", (PHOTO,))
    assert "FB-000004" in reply and transcript.step == ("menu", "choose")


def test_zero_leaves_the_reply_without_adding_anything() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.state, _ = answered(transcript.state, "FB-000004", "شكراً")
    transcript.send("٠")
    assert transcript.step == ("menu", "choose")
    assert not [e for e in transcript.effects if isinstance(e, AddFeedbackReply)]


def test_working_days_skip_friday_saturday_and_holidays() -> None:
    thursday = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # 12:00 in Riyadh
    due = answer_due(thursday, 5)
    assert due.date() == date(2026, 12, 3) and due.hour == 12
    with_holiday = answer_due(thursday, 5, (date(2026, 11, 29),))
    assert with_holiday.date() == date(2026, 12, 6)
    assert flows.text("ar", "menu.option.feedback") == "مقترح أو شكوى"


def test_a_complaint_s_turns_are_kept_private_a_suggestion_s_are_not() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.send("٦")
    transcript.send("١")
    transcript.send("اقتراح")
    assert not [e for e in transcript.effects if isinstance(e, KeepPrivate)]
    transcript.send("٦")
    for line in ("٢", "شكوى", "٢"):
        before = len(transcript.effects)
        transcript.send(line)
        assert any(isinstance(e, KeepPrivate) for e in transcript.effects[before:]), line
    transcript.state, _ = answered(transcript.state, "FB-000002", "نعتذر", private=True)
    transcript.send("شكراً")
    assert isinstance(transcript.effects[-1], KeepPrivate)


def test_a_menu_number_while_a_reply_waits_is_the_menu_choice() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.state, _ = answered(transcript.state, "FB-000004", "شكراً لاقتراحك")
    reply = transcript.send("٥")  # days later: "ask a question", as the menu says
    assert transcript.step == ("knowledge", "ask")
    assert "FB-000004" not in reply
    assert not [e for e in transcript.effects if isinstance(e, AddFeedbackReply)]
