"""The knowledge base's matcher: a beneficiary's own question to the charity's entries.

Short questions, written as people write on a phone: Gulf dialect, a missing or wrong
hamza, ة for ه, letters stretched or doubled, words run together, typos, English, and
Arabic in Latin letters ("Arabizi"). A question becomes a bag of features: each content
word, lightly stemmed, and the character trigrams of that stem (which survive typos and
missing spaces). Entries are scored by the cosine of TF-IDF vectors against each of
their phrasings (question and alternatives), with a smaller share for how much of the
question their answer covers. The score is a confidence with three outcomes: ``sure``
(answer), ``close`` (ask "did you mean" with up to three questions) and ``none``.

Pure Python and no model weights: an index of 500 entries answers in about a
millisecond (``python -m bench.knowledge``).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from flows.text import fold_arabic
from flows.types import KnowledgeEntry, KnowledgeMatch, Language

# Calibrated on the tuning part of tests/knowledge_questions.py, then frozen (see README).
SURE_AT: Final = 0.42
# A sure answer also needs this lead over the next different entry.
SURE_MARGIN: Final = 0.08
CLOSE_AT: Final = 0.24
# "Did you mean" lists entries within this share of the best one.
CLOSE_SHARE: Final = 0.6
MAX_CANDIDATES: Final = 3
_LEADERS: Final = 12
# The answer's words count for this much; the phrasings for the rest.
ANSWER_SHARE: Final = 0.2
# A sure answer must know more than this share of the question's content words: a
# question about football that shares one word with an entry is not that entry's.
SURE_COVERAGE: Final = 0.5
# A word is known to an entry when this share of its trigrams is (typos, variants).
KNOWN_WORD: Final = 0.6

# What an answer may quote: the charity's name, working hours, phone number, the days
# a decision takes, and the crisis hotline text (handoff.hotline_text).
PLACEHOLDERS: Final = (
    "organization.name",
    "organization.hours",
    "organization.phone",
    "organization.decision_days",
    "organization.hotline",
)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


# Words that carry no meaning of their own in a question: MSA and Gulf function words,
# polite formulas, "I want". Interrogatives are kept (folded to one form each): "when"
# and "where" tell two questions about the same thing apart.
def _listed(block: str) -> frozenset[str]:
    return frozenset(fold_arabic(word) for word in block.split())


_STOP_AR: Final = _listed(
    """
    في من على الى إلى عن مع عند عندكم عندك لدى لديكم هل يا ايها او أو و ثم بس
    انا أنا احنا نحن انت انتم أنتم هو هي هم هذا هذه ذلك هذي هذا ذاك اللي الي الذي التي الذين
    ابي ابغى ابغي ابا ودي بغيت اريد أريد نبي نبغى نريد ابى
    لو سمحت سمحتوا الله يعافيك يعطيك العافيه جزاكم خير السلام عليكم مرحبا تكفى تكفون
    ممكن اقدر يمكن هل شي شيء كل اي أي الحين الآن الان ان أن إن كان يكون لي لنا لكم
    حق حقت حقي حقنا عشان علشان لان لأن قد لقد ما ماهي ماهو
    """
)
_STOP_EN: Final = _listed(
    """
    a an the is are am was were be been do does did i me my we our you your he she it they
    them this that these those to of in on at for from with by and or but if can could
    would should will shall may might please hi hello dear sir madam want need wanna
    there here have has had any some about so just also get
    """
)
# Dialect and misspelt interrogatives, folded to one form.
_QUESTION_WORDS: Final = {
    fold_arabic(k): fold_arabic(v)
    for k, v in {
        "وش": "ما",
        "ايش": "ما",
        "إيش": "ما",
        "اش": "ما",
        "شو": "ما",
        "شنو": "ما",
        "ويش": "ما",
        "وشو": "ما",
        "ماذا": "ما",
        "وين": "اين",
        "فين": "اين",
        "أين": "اين",
        "امتى": "متى",
        "إمتى": "متى",
        "ايمتى": "متى",
        "متي": "متى",
        "شلون": "كيف",
        "كيفية": "كيف",
        "ليش": "لماذا",
        "ليه": "لماذا",
        "مين": "من",
        "منو": "من",
        "كم": "كم",
        "قديش": "كم",
    }.items()
}
# Interrogatives (after folding) tell questions apart but are not their subject.
_ASKING: Final = frozenset(
    (
        "ما",
        "اين",
        "متي",
        "كيف",
        "لماذا",
        "من",
        "كم",
        "what",
        "where",
        "when",
        "how",
        "why",
        "who",
        "which",
    )
)
_PREFIXES: Final = ("وبال", "وال", "بال", "فال", "كال", "لل", "ال")
# No dual "ان": it would cut "عنوان" and not "عنوانكم", two stems for one word.
_SUFFIXES: Final = ("هما", "كم", "هم", "ها", "نا", "ات", "ون", "ين", "يه", "ه", "ي")
_ELONGATED = re.compile(r"(.)\1{2,}")
_LATIN_WORD = re.compile(r"[a-z0-9']+")

# Arabic written in Latin letters and digits: the common Gulf forms, longest first.
_ARABIZI: Final = (
    ("sh", "ش"),
    ("kh", "خ"),
    ("gh", "غ"),
    ("th", "ث"),
    ("dh", "ذ"),
    ("ch", "ش"),
    ("aa", "ا"),
    ("ee", "ي"),
    ("ii", "ي"),
    ("oo", "و"),
    ("ou", "و"),
    ("2", "ا"),
    ("3", "ع"),
    ("5", "خ"),
    ("6", "ط"),
    ("7", "ح"),
    ("8", "ق"),
    ("9", "ص"),
    ("b", "ب"),
    ("t", "ت"),
    ("j", "ج"),
    ("d", "د"),
    ("r", "ر"),
    ("z", "ز"),
    ("s", "س"),
    ("f", "ف"),
    ("q", "ق"),
    ("k", "ك"),
    ("l", "ل"),
    ("m", "م"),
    ("n", "ن"),
    ("h", "ه"),
    ("w", "و"),
    ("y", "ي"),
    ("g", "ق"),
    ("v", "ف"),
    ("p", "ب"),
    ("x", "كس"),
    ("c", "ك"),
    ("a", "ا"),
    ("i", "ي"),
    ("e", "ي"),
    ("u", "و"),
    ("o", "و"),
)


def _stem(word: str) -> str:
    """A light stem: the article and attached particles before, a few endings after."""
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix) :]
            break
    else:
        if word[:1] in ("و", "ف", "ب") and len(word) >= 5:
            word = word[1:]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _arabizi_words(word: str) -> tuple[str, ...]:
    """A Latin-letter word read as Arabic ("far3" -> "فرع"), in two spellings: with every
    inner "a" as alef (long, "dawam" -> "دوام") and with inner short vowels dropped."""
    for article in ("al", "el", "il"):
        if word.startswith(article) and len(word) > len(article) + 2:
            rest = _arabizi_words(word[len(article) :])
            return tuple("ال" + r for r in rest)
    long_, short = [], []
    i = 0
    while i < len(word):
        for latin, arabic in _ARABIZI:
            if word.startswith(latin, i):
                inner = 0 < i < len(word) - len(latin)
                if latin in ("a", "e", "i", "o", "u"):
                    long_.append("ا" if latin == "a" else arabic)
                    short.append("" if inner else ("ا" if latin == "a" and i == 0 else arabic))
                    if latin in ("e", "i") and inner:
                        long_[-1] = ""
                else:
                    long_.append(arabic)
                    short.append(arabic)
                i += len(latin)
                break
        else:
            i += 1
    return ("".join(long_), "".join(short))


def _word_features(word: str, features: dict[str, float], weight: float = 1.0) -> None:
    features["w:" + word] = features.get("w:" + word, 0.0) + weight
    padded = f"_{word}_"
    for i in range(len(padded) - 2):
        gram = padded[i : i + 3]
        features[gram] = features.get(gram, 0.0) + weight * 0.5


def _arabic_words(folded: str) -> list[str]:
    out = []
    for token in re.findall(r"[^\W_]+", folded):
        token = _ELONGATED.sub(r"\1", token)
        token = _QUESTION_WORDS.get(token, token)
        if token in _STOP_AR or token in _STOP_EN or token.isdigit():
            continue
        out.append(_stem(token) if not token.isascii() else _english_stem(token))
    return out


def _english_stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> list[str]:
    """The stemmed words of a text that say what it is about (no interrogatives)."""
    return [w for w in _arabic_words(fold_arabic(text)) if w and w not in _ASKING]


def _grams(word: str) -> set[str]:
    padded = f"_{word}_"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def features(text: str) -> dict[str, float]:
    """The weighted features of a text (its words and their character trigrams)."""
    found: dict[str, float] = {}
    for word in _arabic_words(fold_arabic(text)):
        if word:
            _word_features(word, found)
    return found


def arabizi_features(text: str) -> dict[str, float]:
    """The features of a Latin-letter text read as Arabic; empty for other texts."""
    folded = fold_arabic(text)
    if not folded.isascii():
        return {}
    found: dict[str, float] = {}
    for latin in _LATIN_WORD.findall(folded):
        if latin in ("al", "el", "il", "l"):
            continue
        spellings = set(_arabizi_words(latin))
        for spelling in spellings:
            for word in _arabic_words(spelling):
                _word_features(word, found, 1.0 / len(spellings))
    return found


def script_language(text: str) -> Language:
    """Arabic when the text has Arabic letters, else English."""
    return "ar" if any("\u0600" <= ch <= "\u06ff" for ch in text) else "en"


class KnowledgeIndex:
    """The entries of one revision of the knowledge base, ready to be asked.

    Built once per revision (the engine keeps it until the base changes), then read by
    every message: ``ask`` never changes it.
    """

    def __init__(self, entries: Iterable[KnowledgeEntry]) -> None:
        self.entries: tuple[KnowledgeEntry, ...] = tuple(entries)
        self._by_id = {entry.id: entry for entry in self.entries}
        phrasings: list[tuple[int, dict[str, float]]] = []
        answers: list[dict[str, float]] = []
        document_frequency: dict[str, int] = defaultdict(int)
        for number, entry in enumerate(self.entries):
            seen: set[str] = set()
            for phrasing in (entry.question, *entry.alternatives):
                found = features(phrasing)
                if found:
                    phrasings.append((number, found))
                    seen.update(found)
            answer = features(entry.answer)
            answers.append(answer)
            seen.update(answer)
            for feature in seen:
                document_frequency[feature] += 1
        count = max(len(self.entries), 1)
        # Smoothed IDF: a feature in every entry still weighs a little.
        self._idf = {f: math.log(1 + count / df) for f, df in document_frequency.items()}
        self._unseen_idf = math.log(1 + count)
        self._phrasing_entry: list[int] = []
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._answer_postings: dict[str, list[int]] = defaultdict(list)
        for slot, (number, found) in enumerate(phrasings):
            vector = self._weigh(found)
            norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
            self._phrasing_entry.append(number)
            for feature, value in vector.items():
                self._postings[feature].append((slot, value / norm))
        for number, answer in enumerate(answers):
            for feature in answer:
                self._answer_postings[feature].append(number)
        # What each entry knows, for the coverage check of a sure answer.
        self._known: list[tuple[frozenset[str], frozenset[str]]] = []
        for entry in self.entries:
            known_words = {
                w
                for text in (entry.question, *entry.alternatives, entry.answer)
                for w in content_words(text)
            }
            known_grams = {g for w in known_words for g in _grams(w)}
            self._known.append((frozenset(known_words), frozenset(known_grams)))
        self._twins: dict[tuple[str, Language], list[KnowledgeEntry]] = defaultdict(list)
        for entry in self.entries:
            if entry.topic:
                self._twins[(entry.topic, entry.language)].append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, entry_id: int) -> KnowledgeEntry | None:
        return self._by_id.get(entry_id)

    def _weigh(self, found: Mapping[str, float]) -> dict[str, float]:
        return {f: v * self._idf.get(f, self._unseen_idf) for f, v in found.items()}

    def scores(self, text: str, limit: int | None = None) -> list[tuple[float, int]]:
        """The entries with a score above zero, best first: (score, entry position)."""
        best = self._scores(features(text))
        if script_language(text) == "en":
            for number, score in self._scores(arabizi_features(text)).items():
                best[number] = max(best.get(number, 0.0), score)
        if limit is not None:
            return heapq.nlargest(limit, ((s, n) for n, s in best.items()))
        return sorted(((s, n) for n, s in best.items()), reverse=True)

    def _scores(self, found: Mapping[str, float]) -> dict[int, float]:
        if not found:
            return {}
        query = self._weigh(found)
        squares = {f: v * v for f, v in query.items()}
        total = sum(squares.values())
        norm = math.sqrt(total)
        by_slot: dict[int, float] = defaultdict(float)
        covered: dict[int, float] = defaultdict(float)
        for feature, value in query.items():
            for slot, weight in self._postings.get(feature, ()):
                by_slot[slot] += value * weight
            for number in self._answer_postings.get(feature, ()):
                covered[number] += squares[feature]
        best: dict[int, float] = {}
        for slot, dot in by_slot.items():
            number = self._phrasing_entry[slot]
            best[number] = max(best.get(number, 0.0), dot / norm)
        return {
            number: (1 - ANSWER_SHARE) * best.get(number, 0.0)
            + ANSWER_SHARE * covered.get(number, 0.0) / total
            for number in set(best) | set(covered)
        }

    def ask(self, text: str, language: Language | None = None) -> KnowledgeMatch:
        """What the base has for ``text``, preferring entries in the question's language.

        Args:
            language: the conversation's language, used only to break ties between
                an entry and its twin in the other language (same topic).
        """
        ranked = self.scores(text, _LEADERS)
        if not ranked:
            return KnowledgeMatch("none")
        wanted = script_language(text) if language is None else language
        if script_language(text) == "en":
            wanted = "en" if ranked and self.entries[ranked[0][1]].language == "en" else wanted
        top_score, top = ranked[0]
        top_entry = self.entries[top]
        # Only the leaders matter for the margin and the candidates.
        rivals = [
            (score, self.entries[n])
            for score, n in ranked[1:_LEADERS]
            if not self._same_matter(self.entries[n], top_entry)
        ]
        second = rivals[0][0] if rivals else 0.0
        clear = top_score - second >= SURE_MARGIN or second < CLOSE_AT
        if top_score >= SURE_AT and clear and self.coverage(text, top) > SURE_COVERAGE:
            return KnowledgeMatch("sure", (self._in(top_entry, wanted),), top_score)
        if top_score < CLOSE_AT:
            return KnowledgeMatch("none", (), top_score)
        candidates = [self._in(top_entry, wanted)]
        for score, entry in rivals:
            if len(candidates) >= MAX_CANDIDATES or score < top_score * CLOSE_SHARE:
                break
            if score >= CLOSE_AT * 0.8:
                twin = self._in(entry, wanted)
                if all(not self._same_matter(twin, c) for c in candidates):
                    candidates.append(twin)
        return KnowledgeMatch("close", tuple(candidates), top_score)

    def coverage(self, text: str, number: int) -> float:
        """The share of the question's content words that the entry at ``number`` knows."""
        asked = content_words(text)
        if script_language(text) == "en" and self.entries[number].language == "ar":
            folded = fold_arabic(text)
            asked = [
                w
                for latin in _LATIN_WORD.findall(folded)
                for w in content_words(_arabizi_words(latin)[-1])
            ]
        if not asked:
            return 0.0
        words, grams = self._known[number]
        known = 0
        for word in asked:
            own = _grams(word)
            if word in words or len(own & grams) >= KNOWN_WORD * len(own):
                known += 1
        return known / len(asked)

    def _same_matter(self, a: KnowledgeEntry, b: KnowledgeEntry) -> bool:
        """The same entry, or its twin in the other language."""
        return a.id == b.id or (bool(a.topic) and a.topic == b.topic and a.language != b.language)

    def _in(self, entry: KnowledgeEntry, language: Language) -> KnowledgeEntry:
        """``entry``, or its twin in ``language`` when the base has exactly one."""
        if entry.language == language or not entry.topic:
            return entry
        twins = self._twins.get((entry.topic, language), [])
        return twins[0] if len(twins) == 1 else entry


def fill_placeholders(answer: str, values: Mapping[str, str]) -> str:
    """``answer`` with ``{organization.name}`` and the other known placeholders filled in.

    Anything else in braces stays as written (validation refuses it on import).
    """

    def value(match: re.Match[str]) -> str:
        return values.get(match.group(1).strip(), match.group(0))

    return _PLACEHOLDER.sub(value, answer)


def unknown_placeholders(text: str) -> list[str]:
    """The ``{…}`` names in ``text`` that are not placeholders the bot can fill."""
    return [
        m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1).strip() not in PLACEHOLDERS
    ]


def question_key(question: str) -> str:
    """The form two questions are compared in (for duplicates and unanswered counts)."""
    return " ".join(re.findall(r"[^\W_]+", fold_arabic(question)))


def entries_from(rows: Sequence[Mapping[str, str]]) -> list[KnowledgeEntry]:
    """Entries from rows of strings (tests and benchmarks); numbered from 1."""
    return [
        KnowledgeEntry(
            id=number,
            question=row["question"],
            answer=row["answer"],
            alternatives=tuple(a.strip() for a in row.get("alternatives", "").split("|") if a),
            language="en" if row.get("language", "ar") == "en" else "ar",
            topic=row.get("topic", ""),
        )
        for number, row in enumerate(rows, start=1)
    ]
