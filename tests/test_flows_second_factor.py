"""A request filed on another phone or channel is shown only after the second factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from transcript import Transcript

import flows
from flows.types import Address, ConversationState, InboundMessage, OtherRequest, RequestSummary

FILED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ELSEWHERE = OtherRequest(
    RequestSummary("REQ-000042", "under_review", "rent", FILED, FILED + timedelta(days=14)),
    national_id_last4="0008",
)


def transcript() -> Transcript:
    return Transcript(others=(ELSEWHERE,))


def test_the_last_four_digits_show_the_request() -> None:
    chat = transcript()
    chat.send("مرحبا")
    asked = chat.send("REQ-000042")
    assert "آخر ٤ أرقام" in asked and "REQ-000042" not in asked
    shown = chat.send("٠٠٠٨")
    assert "REQ-000042" in shown
    # Remembered for this conversation: asking again shows it at once.
    assert "REQ-000042" in chat.send("REQ-42")


def test_wrong_digits_three_times_lock_that_reference() -> None:
    chat = transcript()
    chat.send("مرحبا")
    chat.send("REQ-000042")
    assert "بقيت لك ٢" in chat.send("1234")
    assert "بقيت لك ١" in chat.send("4321")
    locked = chat.send("1111")
    assert "لا يمكننا عرض هذا الطلب هنا" in locked
    assert chat.step == ("menu", "choose")
    # Asking again does not open more guesses.
    again = chat.send("REQ-000042")
    assert "لا يمكننا عرض هذا الطلب هنا" in again
    assert "REQ-000042" not in chat.send("0008")


def test_a_reference_that_does_not_exist_gets_the_same_questions() -> None:
    chat = Transcript()
    chat.send("مرحبا")
    asked = chat.send("REQ-000777")
    assert "آخر ٤ أرقام" in asked
    assert "بقيت لك ٢" in chat.send("0008")


@pytest.mark.parametrize("answer", ["12", "abcd", "12345", ""])
def test_anything_but_four_digits_is_asked_again(answer: str) -> None:
    chat = transcript()
    chat.send("مرحبا")
    chat.send("REQ-000042")
    assert "أرسل ٤ أرقام فقط" in chat.send(answer)
    assert chat.step == ("status", "verify")


def test_zero_leaves_the_question() -> None:
    chat = transcript()
    chat.send("مرحبا")
    chat.send("REQ-000042")
    assert "١- طلب دعم جديد" in chat.send("٠")


def test_references_asked_tells_the_engine_what_to_load() -> None:
    message = InboundMessage(Address("telegram", "1"), FILED, text="REQ-٠٠٠٠٤٢ ؟")
    assert flows.references_asked(ConversationState(), message) == (42,)
    verifying = ConversationState("status", "verify", {"verify_reference": 42})
    assert flows.references_asked(verifying, message) == (42,)
    assert flows.references_asked(ConversationState("intake", "name"), message) == ()
