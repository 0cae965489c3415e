"""Rating: a score 1-5 as inline choices, an optional comment, the promise of no consequence."""

import pytest
from transcript import Script, Transcript, play

from flows.types import ConversationState, RecordRating, RequestCallback

WITH_COMMENT: Script = [
    ("٣", ["من ١ (غير مُرضية) إلى ٥ (مُرضية جداً)", "تقييمك حق لك", "لا يترتب عليه أي أثر"]),
    ("٥", ["هل تود إضافة ملاحظة", '"تخطي"']),
    ("الموظفة كانت لطيفة وسريعة", ["شكراً لتقييمك"]),
]
WITHOUT_COMMENT: Script = [
    ("3", ["Rating is your right"]),
    ("4", ['"skip"']),
    ("skip", ["Thank you for your rating"]),
]


@pytest.mark.parametrize(
    ("language", "script", "expected"),
    [
        ("ar", WITH_COMMENT, RecordRating(5, "الموظفة كانت لطيفة وسريعة", "service")),
        ("en", WITHOUT_COMMENT, RecordRating(4, None, "service")),
    ],
)
def test_rating_with_and_without_comment(
    language: str, script: Script, expected: RecordRating
) -> None:
    transcript = Transcript(state=ConversationState("menu", "choose", {}, language))  # type: ignore[arg-type]
    play(transcript, script)
    assert transcript.ratings == [expected]
    assert transcript.step == ("menu", "choose")
    assert "rating_score" not in transcript.state.data


def test_scores_are_inline_choices() -> None:
    transcript = Transcript()
    transcript.send("3")
    (ask,) = transcript.replies
    assert ask.inline
    assert [c.payload for c in ask.choices] == ["1", "2", "3", "4", "5"]
    assert "١- غير مُرضية" in transcript.send("x")


@pytest.mark.parametrize("said", ["6", "0.5", "ممتاز جدا", ""])
def test_anything_but_one_to_five_is_refused(said: str) -> None:
    transcript = Transcript(
        state=ConversationState("rating", "score", {"rating_context": "service"})
    )
    reply = transcript.send(said)
    assert "أرسل رقماً من ١ إلى ٥" in reply
    assert transcript.step == ("rating", "score")


@pytest.mark.parametrize("score", [1, 2])
def test_a_low_score_promises_a_call_and_asks_staff_for_one(score: int) -> None:
    transcript = Transcript()
    transcript.send("3")
    transcript.send(str(score))
    reply = transcript.send("لا")
    assert "سيتواصل معك أحد موظفينا ليفهم منك كيف نتحسّن" in reply
    assert "شكراً لتقييمك" in reply
    assert transcript.ratings == [RecordRating(score, None, "service")]
    assert transcript.callbacks == [RequestCallback(score, "service")]
    assert transcript.step == ("menu", "choose")


@pytest.mark.parametrize("score", [3, 4, 5])
def test_other_scores_promise_no_call(score: int) -> None:
    transcript = Transcript(state=ConversationState("rating", "score", {}, "en"))
    transcript.send(str(score))
    reply = transcript.send("skip")
    assert "will contact you" not in reply
    assert transcript.callbacks == []


def test_a_low_score_after_a_handoff_names_its_context_and_request() -> None:
    data = {"rating_context": "handoff", "rating_reference": "REQ-000004"}
    transcript = Transcript(state=ConversationState("rating", "score", data, "en"))
    transcript.send("1")
    reply = transcript.send("he never answered")
    assert "A staff member will contact you to understand how we can do better" in reply
    assert transcript.callbacks == [RequestCallback(1, "handoff", "REQ-000004")]


def test_a_comment_too_long_is_refused_with_the_limit() -> None:
    transcript = Transcript(state=ConversationState("rating", "comment", {"rating_score": 4}))
    reply = transcript.send("ا" * 1001)
    assert "(١٠٠١ حرف)، والحد الأقصى ١٠٠٠ حرف" in reply
    assert transcript.ratings == []


def test_a_scheduled_prompt_can_name_the_request_rated() -> None:
    data = {"rating_context": "service", "rating_reference": "REQ-000009"}
    transcript = Transcript(state=ConversationState("rating", "score", data))
    transcript.send("4")
    transcript.send("تخطي")
    assert transcript.ratings == [RecordRating(4, None, "service", "REQ-000009")]
