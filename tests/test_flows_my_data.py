""" "بياناتي" / "my data" as conversations: what is held, shown to its owner, ID masked."""

from transcript import Transcript

from flows.types import ConversationState, FlowSettings, Need, ReadMyData

SETTINGS = FlowSettings(needs=(Need("rent", "إيجار السكن", "Rent"),))
HELD = {
    "name": "نورة سعد القحطاني",
    "national_id": "1000000008",
    "mobile": "+966551234567",
    "city": "جدة",
    "requests": [
        {
            "reference": "REQ-000007",
            "need": "rent",
            "status": "under_review",
            "created_at": "2026-11-20T06:00:00+00:00",
        }
    ],
    "consent": {"version": "2026-12", "at": "2026-11-20T05:59:00+00:00"},
    "messages": 12,
}


def test_my_data_shows_what_is_held_with_the_id_masked() -> None:
    chat = Transcript(SETTINGS, state=ConversationState("menu", "choose"))
    chat.held = HELD
    reply = chat.send("بياناتي")
    assert ReadMyData() in chat.effects
    for shown in (
        "نورة سعد القحطاني",
        "******0008",
        "٠٥٥١٢٣٤٥٦٧",
        "REQ-000007 (إيجار السكن)",
        "قيد الدراسة",
        "الإصدار 2026-12",
        "١٢",
        "أرسل ٤",
    ):
        assert shown in reply, shown
    assert "1000000008" not in reply
    assert chat.step == ("menu", "choose") and "my_data" not in chat.state.data


def test_my_data_in_english_and_when_nothing_is_held() -> None:
    chat = Transcript(SETTINGS, state=ConversationState("intake", "city", {}, "en"))
    assert "hold no personal data" in chat.send("my data")
    chat.held = HELD
    reply = chat.send("My Data")
    assert "Request REQ-000007 (Rent)" in reply and "******0008" in reply
