"""The knowledge base's accuracy and speed: ``python -m bench.knowledge`` prints the table.

Accuracy on the shipped base (bot/knowledge_example.csv) against each question set:
those tuned on (tests/knowledge_questions.py, tests/knowledge_unseen.py,
tests/knowledge_fresh.py) and the one held out (tests/knowledge_final.py, whose misses
``-v`` does not print); the answer time at 500 entries on a base grown from the
shipped one. Its figures go by hand into bench/knowledge.md, which bench/report.py
copies into bench/results.md every time it writes it.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flows.knowledge import KnowledgeIndex, entries_from
from flows.types import KnowledgeEntry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bot" / "knowledge_example.csv"
QUESTIONS = ROOT / "tests" / "knowledge_questions.py"
UNSEEN = ROOT / "tests" / "knowledge_unseen.py"
FRESH = ROOT / "tests" / "knowledge_fresh.py"
FINAL = ROOT / "tests" / "knowledge_final.py"
# The set never tuned on: its misses are not printed (reading them is tuning on it).
HELD_OUT = "final"


@dataclass(frozen=True, slots=True)
class Accuracy:
    """How a question set fared."""

    in_scope: int
    right: int  # answered with the right entry
    offered: int  # the right entry among the "did you mean" candidates
    wrong_sure: int  # answered with a wrong entry, confidently
    out_of_scope: int
    answered_out: int  # an out-of-scope question answered confidently
    offered_out: int  # an out-of-scope question given a "did you mean"
    failures: tuple[str, ...]

    @property
    def right_or_offered(self) -> float:
        return (self.right + self.offered) / max(self.in_scope, 1)

    @property
    def wrong_rate(self) -> float:
        return self.wrong_sure / max(self.in_scope, 1)

    @property
    def answered_out_rate(self) -> float:
        return self.answered_out / max(self.out_of_scope, 1)

    @property
    def offered_out_rate(self) -> float:
        return self.offered_out / max(self.out_of_scope, 1)


def example_index() -> KnowledgeIndex:
    with EXAMPLE.open(encoding="utf-8-sig", newline="") as file:
        return KnowledgeIndex(entries_from(list(csv.DictReader(file))))


def _module(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def question_sets() -> dict[str, tuple[tuple[str, str | None], ...]]:
    """The sets by name, the one never tuned on (``HELD_OUT``) last."""
    questions, unseen = _module(QUESTIONS), _module(UNSEEN)
    fresh, final = _module(FRESH), _module(FINAL)
    return {
        "tuning": questions.TUNING,  # type: ignore[attr-defined]
        "dialect": questions.DIALECT,  # type: ignore[attr-defined]
        "first held-out": questions.HELD_OUT,  # type: ignore[attr-defined]
        "unseen": unseen.UNSEEN,  # type: ignore[attr-defined]
        "fresh": fresh.FRESH,  # type: ignore[attr-defined]
        HELD_OUT: final.FINAL,  # type: ignore[attr-defined]
    }


def measure(index: KnowledgeIndex, questions: tuple[tuple[str, str | None], ...]) -> Accuracy:
    right = offered = wrong = answered_out = offered_out = in_scope = out = 0
    failures = []
    for question, topic in questions:
        match = index.ask(question)
        topics = [entry.topic for entry in match.entries]
        if topic is None:
            out += 1
            if match.outcome == "sure":
                answered_out += 1
                failures.append(f"answered out of scope: {question!r} -> {topics}")
            elif match.outcome == "close":
                offered_out += 1
                failures.append(f"offered out of scope: {question!r} -> {topics}")
            continue
        in_scope += 1
        if match.outcome == "sure" and topics == [topic]:
            right += 1
        elif match.outcome == "close" and topic in topics:
            offered += 1
        else:
            if match.outcome == "sure":
                wrong += 1
            failures.append(
                f"{match.outcome} {match.confidence:.2f}: {question!r} wanted {topic}, got {topics}"
            )
    return Accuracy(
        in_scope, right, offered, wrong, out, answered_out, offered_out, tuple(failures)
    )


def grown(entries: tuple[KnowledgeEntry, ...], size: int) -> list[KnowledgeEntry]:
    """``size`` entries: the shipped ones, then variants of them with other wording."""
    out = list(entries)
    round_ = 1
    while len(out) < size:
        for entry in entries:
            if len(out) >= size:
                break
            out.append(
                KnowledgeEntry(
                    id=len(out) + 1,
                    question=f"{entry.question} (برنامج {round_})",
                    answer=f"{entry.answer} {round_}",
                    alternatives=tuple(f"{a} {round_}" for a in entry.alternatives),
                    language=entry.language,
                    topic=f"{entry.topic}-{round_}",
                )
            )
        round_ += 1
    return out


def answer_time(size: int = 500, repeat: int = 20) -> tuple[float, float]:
    """Milliseconds per question over every question of the sets, at ``size`` entries:
    the median round's CPU time and wall-clock time (the second grows when other
    programs share the processor)."""
    index = KnowledgeIndex(grown(example_index().entries, size))
    questions = [q for qs in question_sets().values() for q, _ in qs]
    cpu, wall = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        for question in questions:
            index.ask(question)
        cpu.append((time.process_time() - start_cpu) * 1000 / len(questions))
        wall.append((time.perf_counter() - start) * 1000 / len(questions))
    return sorted(cpu)[len(cpu) // 2], sorted(wall)[len(wall) // 2]


def main() -> int:
    index = example_index()
    print(f"knowledge base: {len(index)} entries (bot/knowledge_example.csv)")
    print(
        "| set | in-scope | right | did-you-mean | right or offered | wrong sure | "
        "out-of-scope | out-of-scope answered | out-of-scope offered |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    verbose = "-v" in sys.argv
    for name, questions in question_sets().items():
        a = measure(index, questions)
        print(
            f"| {name} | {a.in_scope} | {a.right} | {a.offered} | {a.right_or_offered:.1%} | "
            f"{a.wrong_sure} ({a.wrong_rate:.1%}) | {a.out_of_scope} | "
            f"{a.answered_out} ({a.answered_out_rate:.1%}) | "
            f"{a.offered_out} ({a.offered_out_rate:.1%}) |"
        )
        if verbose and name != HELD_OUT:
            for failure in a.failures:
                print("   ", failure)
    cpu, wall = answer_time()
    print(
        f"answer time at 500 entries: {cpu:.2f} ms of CPU, {wall:.2f} ms on the clock "
        "(median of 20 rounds over every question)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
