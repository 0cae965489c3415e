"""The intake's less travelled paths, as transcripts: how long data is kept in the privacy
notice, documents sent with "تم" as the caption, past the limit or with a file of the
wrong type beside a good one, text at the documents step of a text-only channel, a long
description shortened in the summary, and "someone else" typed for whom a request is."""

from typing import Any

import pytest
from transcript import AUDIO, PDF, PHOTO, Transcript

from flows.types import Applicant, ConversationState, FlowSettings, Need

SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    needs=(
        Need("food_basket", "سلة غذائية", "Food basket"),
        Need("rent", "إيجار السكن", "Rent"),
    ),
)
BEFORE_DOCUMENTS: dict[str, Any] = {
    "name": "محمد أحمد علي الزهراني",
    "national_id": "1000000008",
    "mobile": "+966551234567",
    "city": "جدة",
    "need": "rent",
    "description": "أسكن مع أطفالي الأربعة في شقة مستأجرة وزوجي متوفى",
}


def at_step(step: str, draft: dict[str, Any], channel: str = "whatsapp") -> Transcript:
    state = ConversationState("intake", step, {"intake_draft": dict(draft)}, "ar")
    return Transcript(SETTINGS, channel=channel, state=state)


def documents(transcript: Transcript) -> list[dict[str, str]]:
    return list(transcript.state.data["intake_draft"].get("documents", []))


@pytest.mark.parametrize(
    ("days", "told"),
    [(365, "سنة واحدة"), (730, "سنتين"), (12 * 365, "١٢ سنة"), (400, "٤٠٠ يوماً")],
)
def test_the_privacy_notice_says_how_long_data_is_kept_in_words(days: int, told: str) -> None:
    settings = FlowSettings(organization_name="جمعية البر", retention_days=days)
    transcript = Transcript(settings)
    transcript.send("السلام عليكم")
    reply = transcript.send("١")
    assert f"تُحفظ مشفّرة {told} بعد إغلاق الطلب" in reply
    assert transcript.saved == []


def test_a_photo_with_done_as_its_caption_is_kept_and_the_summary_follows() -> None:
    transcript = at_step("documents", BEFORE_DOCUMENTS)
    reply = transcript.send("تم", media=(PHOTO,))
    assert "(٨/٨)" in reply and "٧- المستندات: ١" in reply
    assert transcript.step == ("intake", "summary")
    assert [d["content_type"] for d in documents(transcript)] == ["image/jpeg"]


def test_a_file_past_the_limit_is_told_and_not_counted() -> None:
    transcript = at_step("documents", BEFORE_DOCUMENTS)
    transcript.send("", media=(PHOTO,) * 5)
    reply = transcript.send("", media=(PDF,))
    assert "وصلت إلى الحد الأقصى (٥ مستندات)" in reply
    assert "استلمنا" not in reply  # nothing new was received
    assert len(documents(transcript)) == 5


def test_a_wrong_file_beside_a_good_one_keeps_the_good_one_and_says_why() -> None:
    transcript = at_step("documents", BEFORE_DOCUMENTS)
    reply = transcript.send("", media=(PHOTO, AUDIO))
    assert "استلمنا ١ من ٥" in reply and "لا نقبل هذا النوع من الملفات" in reply
    assert [d["content_type"] for d in documents(transcript)] == ["image/jpeg"]
    assert transcript.step == ("intake", "documents")


def test_text_at_the_documents_step_of_a_text_only_channel_says_how_to_go_on() -> None:
    transcript = at_step("documents", BEFORE_DOCUMENTS, channel="sms")
    reply = transcript.send("عندي تقرير طبي")
    assert 'أرسل "تم" للمتابعة، ويمكنك تسليم المستندات للباحث الاجتماعي لاحقاً' in reply
    assert transcript.step == ("intake", "documents")
    assert documents(transcript) == []


def test_a_long_description_is_shortened_in_the_summary_but_kept_whole() -> None:
    long = "أسكن مع أطفالي الأربعة في شقة مستأجرة " * 5  # about 190 characters
    draft = {k: v for k, v in BEFORE_DOCUMENTS.items() if k != "description"}
    transcript = at_step("description", draft)
    transcript.send(long)
    reply = transcript.send("تم")
    assert "٦- الوصف:" in reply and "…" in reply
    assert long.strip() not in reply
    assert transcript.state.data["intake_draft"]["description"] == long.strip()


def test_someone_else_typed_asks_the_applicant_s_name() -> None:
    settings = FlowSettings(organization_name="جمعية البر", notice_version="")
    mother = Applicant("فاطمة أحمد علي الزهراني", "1000000008")
    transcript = Transcript(settings, channel="telegram", applicants=[mother])
    transcript.send("السلام عليكم")
    assert "لمن هذا الطلب؟" in transcript.send("١")
    reply = transcript.send("آخر")  # not the button's label ("شخص آخر"), still understood
    assert "(١/٨)" in reply and "الاسم الرباعي لصاحب الطلب" in reply
    assert transcript.step == ("intake", "name")


def test_the_earlier_applicants_erased_meanwhile_the_name_is_asked_as_for_anyone() -> None:
    settings = FlowSettings(organization_name="جمعية البر", notice_version="")
    mother = Applicant("فاطمة أحمد علي الزهراني", "1000000008")
    transcript = Transcript(settings, channel="telegram", applicants=[mother])
    transcript.send("السلام عليكم")
    assert "لمن هذا الطلب؟" in transcript.send("١")
    transcript.applicants = []  # staff erased her record while the question was open
    reply = transcript.send("١")
    assert "(١/٨)" in reply and "فاطمة" not in reply
    assert transcript.step == ("intake", "name")
    assert "name" not in transcript.state.data["intake_draft"]
