"""Nothing a beneficiary sends, and no stored state, makes the flows raise or fall silent."""

from typing import Any, cast

import pytest
from transcript import AUDIO, PHOTO, Transcript

import flows
from flows import router
from flows.steps import Step
from flows.types import ConversationState, Media

GENERIC_ERROR = flows.text("ar", "error.generic")

STATES = [
    ConversationState(),
    ConversationState("menu", "choose"),
    ConversationState("intake", "name", {"intake_draft": {}}),
    ConversationState("intake", "national_id", {"intake_draft": {"name": "أ ب"}}),
    ConversationState("intake", "need", {"intake_draft": {"name": "أ ب"}}),
    ConversationState("intake", "documents", {"intake_draft": {"name": "أ ب"}}),
    ConversationState("intake", "summary", {"intake_draft": {"name": "أ ب"}}),
    ConversationState("intake", "continue_or_restart", {"intake_draft": {"name": "أ ب"}}),
    ConversationState("rating", "score"),
    ConversationState("rating", "comment"),  # lost its score
    ConversationState("handoff", "waiting"),
    ConversationState("needs_info", "answer", {"needs_info_reference": "REQ-000001"}),
    ConversationState("needs_info", "answer"),  # lost its reference
    ConversationState("needs_info", "answer", {"needs_info_reference": ["REQ-1"]}),
]
MESSAGES: list[tuple[str, tuple[Media, ...], str | None]] = [
    ("", (), None),
    ("ا" * 5000, (), None),
    ("😀😀😀", (), None),
    ("", (PHOTO,), None),
    ("", (AUDIO,), None),
    ("", (), "no_such_button"),
    ("\u200f\u200e ", (), None),
    ("{name} {0} %s", (), None),
    ("٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩٩", (), None),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: f"{s.flow}/{s.step}")
@pytest.mark.parametrize(("said", "media", "payload"), MESSAGES)
def test_odd_messages_are_handled_by_the_step_not_the_safety_net(
    state: ConversationState, said: str, media: tuple[Media, ...], payload: str | None
) -> None:
    transcript = Transcript(state=state)
    reply = transcript.send(said, media=media, payload=payload)
    assert GENERIC_ERROR not in reply
    assert transcript.state.flow in router.FLOWS
    assert transcript.state.step in router.FLOWS[transcript.state.flow]
    if state.flow != "handoff":
        assert reply.strip()  # outside a handoff every message gets an answer


@pytest.mark.parametrize(
    "state",
    [
        ConversationState("survey", "q1"),  # a flow from an older version
        ConversationState("intake", "age"),  # a step that no longer exists
        ConversationState("menu", cast(Any, None)),
        ConversationState("menu", "choose", cast(Any, None)),
        ConversationState("menu", "choose", {}, cast(Any, "fr")),
    ],
)
def test_unknown_stored_state_goes_back_to_the_menu(state: ConversationState) -> None:
    transcript = Transcript(state=state)
    reply = transcript.send("كيف حالكم")
    assert "١- طلب دعم جديد" in reply
    assert transcript.step == ("menu", "choose")
    assert transcript.state.language == "ar"


def test_damaged_data_values_do_not_crash() -> None:
    data = {"intake_draft": "not a dict", "bad_answers": "many", "last_seen": "yesterday"}
    transcript = Transcript(state=ConversationState("intake", "city", data))
    reply = transcript.send("جدة")
    assert GENERIC_ERROR not in reply
    assert transcript.state.data["intake_draft"] == {"city": "جدة"}


def test_a_none_text_is_treated_as_empty() -> None:
    transcript = Transcript(state=ConversationState("menu", "choose"))
    reply = transcript.send(cast(str, None))
    assert "لم أفهم رسالتك" in reply


def test_an_unknown_key_the_draft_carries_is_kept_harmlessly() -> None:
    draft = {"name": "محمد أحمد", "favourite_colour": "blue"}
    transcript = Transcript(
        state=ConversationState("intake", "national_id", {"intake_draft": draft})
    )
    assert "(٣/٨)" in transcript.send("1000000008")


def test_a_failing_step_answers_with_the_generic_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(turn: object) -> None:
        raise RuntimeError("bug")

    steps = dict(router.FLOWS["menu"])
    steps["choose"] = Step(steps["choose"].prompt, cast(Any, broken))
    monkeypatch.setitem(cast(dict[str, Any], router.FLOWS), "menu", steps)
    transcript = Transcript(state=ConversationState("menu", "choose", {}, "en"))
    assert transcript.send("1") == flows.text("en", "error.generic")
    assert transcript.step == ("menu", "start")
    assert transcript.state.language == "en"


def test_last_seen_is_recorded_on_every_message() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    assert transcript.state.data["last_seen"] == transcript.now.isoformat()


def test_a_well_formed_message_reaches_the_step_as_the_channel_built_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cleaned once, where the channel built it: the router builds (and cleans) it again
    only when something in it is not what the steps rely on."""
    seen: list[object] = []
    steps = dict(router.FLOWS["menu"])
    choose = steps["choose"]

    def recording(turn: Any) -> Any:
        seen.append(turn.message)
        return choose.handle(turn)

    steps["choose"] = Step(choose.prompt, recording)
    monkeypatch.setitem(cast(dict[str, Any], router.FLOWS), "menu", steps)
    transcript = Transcript(state=ConversationState("menu", "choose"))
    transcript.send("١")
    transcript.state = ConversationState("menu", "choose")
    transcript.send(cast(str, None))
    well_formed, damaged = seen
    assert well_formed is transcript.sent[0]
    assert damaged is not transcript.sent[1] and cast(Any, damaged).text == ""
