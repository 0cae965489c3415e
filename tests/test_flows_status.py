"""Request status: only the sender's own requests, never whether another reference exists."""

from datetime import UTC, datetime, timedelta

import pytest
from transcript import Transcript

from flows.types import ConversationState, FlowSettings, Need, OtherRequest, RequestSummary

SETTINGS = FlowSettings(needs=(Need("rent", "إيجار السكن", "Rent"),))
FILED = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def _request(number: int, status: str = "under_review", need: str = "rent") -> RequestSummary:
    filed = FILED - timedelta(days=number)
    return RequestSummary(f"REQ-{number:06d}", status, need, filed, filed + timedelta(days=14))


def test_no_requests_yet() -> None:
    transcript = Transcript(SETTINGS)
    assert "ليس لديك طلبات بعد. أرسل ١ لتقديم طلب دعم" in transcript.send("٢")
    assert transcript.step == ("menu", "choose")


def test_one_request_with_status_need_and_both_dates() -> None:
    transcript = Transcript(SETTINGS, requests=[_request(123)])
    reply = transcript.send("2")
    assert "REQ-000123: قيد الدراسة لدى لجنة البحث" in reply
    assert "نوع الدعم: إيجار السكن" in reply
    assert "تاريخ التقديم: " in reply
    assert "هـ / " in reply
    assert "موعد الرد: بعد" in reply


def test_decided_requests_show_no_decision_date_and_unknown_needs_show_the_key() -> None:
    transcript = Transcript(SETTINGS, requests=[_request(5, "delivered", need="zakat")])
    reply = transcript.send("2")
    assert "تم تسليم الدعم" in reply
    assert "نوع الدعم: zakat" in reply
    assert "موعد الرد" not in reply


def test_at_most_five_newest_first_and_how_many_more() -> None:
    requests = [_request(n) for n in range(1, 8)]  # REQ-000001 is the newest
    transcript = Transcript(SETTINGS, requests=requests, state=ConversationState(language="en"))
    reply = transcript.send("2")
    shown = [f"REQ-{n:06d}" for n in range(1, 6)]
    assert [reply.index(ref) for ref in shown] == sorted(reply.index(ref) for ref in shown)
    assert "REQ-000006" not in reply
    assert "and 2 more" in reply
    assert "send its number (like REQ-000001)" in reply


@pytest.mark.parametrize("said", ["REQ-000007", "req-7", "طلبي رقم REQ-٠٠٠٠٠٧ ما حالته؟", "REQ 7"])
def test_one_own_request_by_reference(said: str) -> None:
    transcript = Transcript(SETTINGS, requests=[_request(3), _request(7, "needs_info")])
    reply = transcript.send(said)
    assert "REQ-000007: نحتاج منك معلومات إضافية" in reply
    assert "REQ-000003" not in reply


def test_someone_else_s_reference_is_never_revealed() -> None:
    # REQ-000999 exists, filed by someone else (ID ending 0008); the sender does not know it.
    elsewhere = OtherRequest(_request(999, "accepted"), national_id_last4="0008")
    exists = Transcript(SETTINGS, requests=[_request(3)], others=[elsewhere])
    reply = exists.send("REQ-000999")
    assert "آخر ٤ أرقام من هوية مقدم الطلب" in reply  # the second factor, never the request
    assert "000999" not in reply and "تمت الموافقة" not in reply
    wrong = exists.send("1234")
    assert "000999" not in wrong
    # The same answers as for the same reference when nobody has it: existence is not leaked.
    nobody = Transcript(SETTINGS, requests=[_request(3)])
    assert nobody.send("REQ-000999") == reply
    assert nobody.send("1234") == wrong


def test_a_reference_outside_the_menu_is_an_answer_to_the_step() -> None:
    state = ConversationState("intake", "description", {"intake_draft": {"name": "x y"}})
    transcript = Transcript(SETTINGS, requests=[_request(3)], state=state)
    transcript.send("سؤال عن REQ-000003 الذي قدمته")
    assert transcript.state.flow == "intake"
