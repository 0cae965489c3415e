"""Inquiries' less travelled paths, as transcripts: a "did you mean" entry removed from
the knowledge base before it was chosen, a new question sent instead of a choice, and
the offer of a person answered in words or with something else."""

from __future__ import annotations

from transcript import Transcript

from bench.knowledge import example_index
from flows.knowledge import KnowledgeIndex
from flows.types import FlowSettings, RecordUnanswered

SETTINGS = FlowSettings(organization_name="جمعية البر", phone="920012345")


def talk() -> Transcript:
    transcript = Transcript(SETTINGS, knowledge=example_index())
    transcript.send("السلام عليكم")
    return transcript


def unanswered(transcript: Transcript) -> list[str]:
    return [e.question for e in transcript.effects if isinstance(e, RecordUnanswered)]


def test_an_entry_removed_before_it_was_chosen_is_not_answered_and_the_question_kept() -> None:
    transcript = talk()
    transcript.send("عنوانكم لو سمحت")
    assert transcript.step == ("knowledge", "choose")
    first = transcript.replies[0].choices[0]
    removed = int(first.payload.removeprefix("kb:"))
    old = transcript.knowledge
    assert old is not None
    # Staff removed that entry from the base while the beneficiary was reading.
    transcript.knowledge = KnowledgeIndex(e for e in old.entries if e.id != removed)
    reply = transcript.send("١")
    assert "لم نجد إجابة لسؤالك، وسجّلناه" in reply and "هل تود التحدث مع موظف؟" in reply
    assert unanswered(transcript) == ["عنوانكم لو سمحت"]


def test_a_new_question_instead_of_a_choice_is_answered() -> None:
    transcript = talk()
    transcript.send("عنوانكم لو سمحت")
    assert transcript.step == ("knowledge", "choose")
    reply = transcript.send("وش الاوراق اللي تبونها؟")
    assert "صورة الهوية الوطنية" in reply and "هل أجاب هذا عن سؤالك؟" in reply
    assert transcript.step == ("knowledge", "helpful")


def test_yes_typed_to_the_offer_of_a_person_opens_a_handoff() -> None:
    transcript = talk()
    transcript.send("متى توزيع السلال؟")
    assert "هل تود التحدث مع موظف؟" in transcript.send("لا")
    transcript.send("نعم")
    assert transcript.step == ("handoff", "waiting")
    assert [h.reason for h in transcript.handoffs] == ["requested"]


def test_a_question_sent_to_the_offer_of_a_person_is_answered_instead() -> None:
    transcript = talk()
    transcript.send("متى توزيع السلال؟")
    transcript.send("لا")
    reply = transcript.send("وين مقر الجمعية")
    assert "920012345" in reply and "هل أجاب هذا عن سؤالك؟" in reply
    assert transcript.handoffs == []
