"""Feedback's less travelled paths, as transcripts: an unknown kind, consent to contact
typed in words or unclear, staff's answer arriving during a handoff, and a reply to an
answer that is empty, of an unaccepted type or too long."""

from __future__ import annotations

from transcript import AUDIO, Transcript

from flows.feedback import TEXT_MAX, answered
from flows.types import AddFeedbackReply, ConversationState, FlowSettings, SaveFeedback

SETTINGS = FlowSettings(organization_name="جمعية البر")


def saved(transcript: Transcript) -> list[SaveFeedback]:
    return [e for e in transcript.effects if isinstance(e, SaveFeedback)]


def replies(transcript: Transcript) -> list[AddFeedbackReply]:
    return [e for e in transcript.effects if isinstance(e, AddFeedbackReply)]


def complaint_written() -> Transcript:
    """A complaint's text sent by someone with no request: consent to contact is asked."""
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.send("٦")
    transcript.send("٢")
    transcript.send("تأخر الرد على اتصالي أسبوعين")
    assert transcript.step == ("feedback", "contact")
    return transcript


def test_an_unknown_kind_is_refused_with_the_three_kinds() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.send("٦")
    reply = transcript.send("استفسار")
    assert "أرسل ١ للمقترح، أو ٢ للشكوى، أو ٣ للشكر" in reply
    assert transcript.step == ("feedback", "kind")
    assert saved(transcript) == []


def test_consent_to_contact_typed_in_words_is_understood() -> None:
    for said, may_contact in (("نعم", True), ("كلا", False), ("no", False)):
        transcript = complaint_written()
        reply = transcript.send(said)
        (effect,) = saved(transcript)
        assert effect.may_contact is may_contact, said
        assert effect.kind == "complaint" and "FB-000001" in reply
        assert transcript.step == ("menu", "choose")


def test_an_unclear_answer_about_contact_is_asked_again_and_nothing_saved() -> None:
    transcript = complaint_written()
    reply = transcript.send("ربما لاحقاً")
    assert "أرسل ١ للموافقة على التواصل، أو ٢ للاكتفاء بالرد كتابةً" in reply
    assert transcript.step == ("feedback", "contact")
    assert saved(transcript) == []
    transcript.send("٢")
    (effect,) = saved(transcript)
    assert effect.may_contact is False


def test_an_answer_during_a_handoff_leaves_the_conversation_with_staff() -> None:
    state = ConversationState("handoff", "waiting")
    after, message = answered(state, "FB-000004", "سنوفر التوصيل قريباً")
    assert after.flow == "handoff" and after.step == "waiting"
    assert "FB-000004" in message.text and "سنوفر التوصيل قريباً" in message.text


def test_a_reply_to_an_answer_that_is_empty_audio_or_too_long_is_refused() -> None:
    transcript = Transcript(SETTINGS)
    transcript.send("السلام عليكم")
    transcript.state, _ = answered(transcript.state, "FB-000004", "شكراً لاقتراحك")
    assert "لم تصلنا كلمات" in transcript.send("   ")
    assert "لا نقبل هذا النوع من الملفات" in transcript.send("", media=[AUDIO])
    assert "الحد الأقصى ٢٠٠٠ حرف" in transcript.send("ب" * (TEXT_MAX + 1))
    assert transcript.step == ("feedback", "reply")
    assert replies(transcript) == []
    transcript.send("شكراً لكم")
    assert replies(transcript) == [AddFeedbackReply("FB-000004", "شكراً لكم", ())]
