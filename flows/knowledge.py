"""The knowledge base's matcher: a beneficiary's own question to the charity's entries.

Short questions, written as people write on a phone: Gulf dialect, a missing or wrong
hamza, ة for ه, letters stretched or doubled, words run together, typos, English, and
Arabic in Latin letters ("Arabizi"). A question becomes a bag of features: each content
word, lightly stemmed, and the character trigrams of that stem (which survive typos and
missing spaces). Gulf words, plurals and verb forms are first turned into the form a
base most likely uses (``_DIALECT``). Entries are scored by the cosine of TF-IDF
vectors against each of their phrasings (question and alternatives), with a smaller
share for how much of the question their answer covers. The score is a confidence with
three outcomes: ``sure`` (answer), ``close`` (ask "did you mean" with up to three
questions) and ``none``; a question whose words no entry knows outnumber those an
entry knows is about something else and gets ``none`` (``KnowledgeIndex.subject``).

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
# A question with as many words no entry knows as words an entry knows ("وش احسن جوال")
# may be about that entry only from this score up (see ``KnowledgeIndex.subject``).
CLOSE_EVEN_AT: Final = 0.35
# "Did you mean" lists entries within this share of the best one.
CLOSE_SHARE: Final = 0.6
MAX_CANDIDATES: Final = 3
_LEADERS: Final = 12
# The answer's words count for this much; the phrasings for the rest.
ANSWER_SHARE: Final = 0.2
# A sure answer must know more than this share of the question's content words: a
# question about football that shares one word with an entry is not that entry's.
SURE_COVERAGE: Final = 0.5
# A word is known to an entry that has a word with this trigram overlap (Dice; typos).
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
    في من على الى إلى عن مع عند عندكم عندك عندي عندنا لدى لديكم هل يا ايها او أو و ثم بس
    انا أنا احنا نحن انت انتم أنتم هو هي هم هذا هذه ذلك هذي هذا ذاك اللي الي الذي التي الذين
    ابي ابغى ابغي ابغا ابا ودي بغيت اريد أريد نبي نبغى نبغي نريد ابى يبي تبي تبون تبغون تبغى
    يبغى يبغون يبون بدي عايز عاوز
    لو سمحت سمحتوا الله يعافيك يعطيك العافيه جزاكم خير السلام عليكم مرحبا تكفى تكفون
    ممكن اقدر نقدر تقدر يقدر تقدرون يمكن ينفع شي شيء كل اي أي الحين الآن الان للحين توه
    ان أن إن كان يكون صار صارت يصير لي لنا لكم معي معاي معانا
    حق حقت حقي حقنا حقكم عشان علشان لان لأن قد لقد ما ماهي ماهو لازم ضروري فيه فيها مافي
    مافيه ماكو اكو ولا والا يكفي كذا كذي زي مثل حتى بعد يعني طيب زين اوكي مره وايد واجد
    كثير شوي شويه برضو اسوي نسوي سوي تسوي تسوون يسوي سويت معكم معك معاكم عطوني اعطوني منكم
    لهم لها له بالضبط اياه اياها ماعندنا ماعندي ماعندهم اشياء
    """
)
_STOP_EN: Final = _listed(
    """
    a an the is are am was were be been do does did i me my we our you your he she it they
    them this that these those to of in on at for from with by and or but if can could
    would should will shall may might please hi hello dear sir madam want need wanna
    there here have has had any some about so just also get got u ur r pls plz much many
    """
)


def _classes(block: str) -> dict[str, str]:
    """``canonical: variant variant`` lines, one class a line, as variant -> canonical."""
    out: dict[str, str] = {}
    for line in block.strip().splitlines():
        canonical, variants = line.split(":")
        for variant in (canonical, *variants.split()):
            out[fold_arabic(variant)] = fold_arabic(canonical.strip())
    return out


# Gulf and Saudi words, plurals and verb forms to the one form the base most likely
# uses, so that a question and an entry written in different registers share words.
# General vocabulary of a charity's inquiries; not a list of any test set's words.
_DIALECT: Final = _classes(
    """
    مال: فلوس بيزات بيسات مصاري نقود
    تقفلون: تسكرون يسكرون تسكر يسكر مسكرين مسكر تقفل يقفل مقفل مقفلين
    موقع: لوكيشن اللوكيشن لوكيشنكم location
    مجاني: ببلاش بلاش مجانا مجانيه
    اسر: عوايل عايلات عائلات عايله عائله اسره
    سكن: شقه شقتي شقق
    ارامل: ارمله ارمل
    كبار: كبير كبيره مسن مسنه عجوز شايب شايبه
    حقيبه: شنطه شنط حقايب
    جهاز: سماعه سماعات نظاره نظارات عكاز
    حاله: وضع وضعي وضعنا
    مطلقات: مطلقه مطلق
    دخل: راتب راتبي معاش
    اوراق: ورق ورقه اوراقي
    عمل: اشتغل يشتغل نشتغل اشتغال تشتغلون يشتغلون
    قطع: مقطوع مقطوعه انقطعت انقطاع قاطعين قطعو قطعت
    تحويل: احول نحول حولت
    نساء: حريم نسوان سيدات
    وظيفه: وظايف وظائف شغل شغله وظيفتي
    ماء: مويه موية ميه مي
    كهرباء: كهربا كهرب الكهربا
    دواء: دوا ادويه ادوية علاجات
    ايجار: اجار ايجارات اجارات
    مؤجر: المؤجر المالك المعزب
    اخلاء: يطردنا يطردونا طردنا طرد يطلعنا يطلعونا طلعونا
    اثاث: كنب كنبه كنبات طاوله طاولات سرير سراير دولاب دواليب مفروشات موبيليا
    اثاث: sofa couch bed table chair wardrobe furniture
    اجهزه: غساله غسالات ثلاجه ثلاجات براد مكيف مكيفات فريزر فرن بوتاجاز تلفزيون شاشه
    اجهزه: fridge freezer washer oven appliance appliances
    ملابس: هدوم ثياب لبس
    سله: سلال سلات كرتون كراتين
    جوال: موبايل
    تلفون: تليفون
    غير: مو مب موب مهب مش مهوب
    رفض: انرفض مرفوض رفضوا رفضو رفضتو رفضتوا رفضتم
    رد: ردوا ردو يردون تردون ردكم
    توزيع: يوزعون توزعون يوزعوا توزعوا وزعتو
    تسجيل: اسجل نسجل يسجل تسجلون سجلت
    تبرع: اتبرع نتبرع يتبرع تبرعت
    تطوع: اتطوع نتطوع متطوع متطوعه متطوعين متطوعات تطوعي
    اعتراض: اعترض نعترض تظلم اتظلم نتظلم
    تجديد: اجدد نجدد يتجدد جددت
    تحديث: احدث نحدث حدثت
    تعديل: اعدل نعدل عدلت
    تغيير: اغير نغير غيرت تغير
    شكوى: اشتكي نشتكي شكاوي
    زكاه: زكات
    كفاله: اكفل يكفل تكفلون كفيل
    علاج: مريض مريضه مرض امراض
    زياره: يزورنا تزورنا يزورني تزورون تزوروننا
    تواصل: اكلمكم نكلمكم اتواصل اكلم نكلم اكلمك نتواصل reach contact
    استحقاق: استحق يستحق مستحق مستحقه مستحقين
    مساعده: مساعدات ساعدوني تساعدوني يساعد تساعدون
    دفع: ادفع ندفع تدفعون يدفع دفعت دفعنا
    سداد: اسدد تسددون يسدد
    استلام: استلم نستلم تستلمون استلمت
    مقيم: وافد وافده وافدين اجنبي اجنبيه اجانب مقيمه مقيمين
    """
)
# Particles a dialect word may carry in front ("بفلوس", "والمالك", "هالشهر").
_CARRIED: Final = ("وال", "بال", "هال", "و", "ب", "ل", "ف")


def _dialect(token: str) -> str:
    if token in _DIALECT:
        return _DIALECT[token]
    for particle in _CARRIED:
        rest = token[len(particle) :]
        if token.startswith(particle) and len(rest) >= 2 and rest in _DIALECT:
            return _DIALECT[rest]
    return token


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
        "شنهو": "ما",
        "ويش": "ما",
        "وشو": "ما",
        "ماذا": "ما",
        "وين": "اين",
        "فين": "اين",
        "أين": "اين",
        "امتى": "متى",
        "إمتى": "متى",
        "ايمتى": "متى",
        "امتا": "متى",
        "متي": "متى",
        "شلون": "كيف",
        "اشلون": "كيف",
        "وشلون": "كيف",
        "ازاي": "كيف",
        "كيفية": "كيف",
        "ليش": "لماذا",
        "ليه": "لماذا",
        "مين": "من",
        "منو": "من",
        "منهو": "من",
        "لمين": "من",
        "لمن": "من",
        "كم": "كم",
        "بكم": "كم",
        "كام": "كم",
        "قديش": "كم",
        # Arabizi: the question words are where it is least like English.
        "wesh": "ما",
        "wsh": "ما",
        "aish": "ما",
        "esh": "ما",
        "shu": "ما",
        "shno": "ما",
        "wain": "اين",
        "wein": "اين",
        "ween": "اين",
        "wen": "اين",
        "fain": "اين",
        "mata": "متى",
        "meta": "متى",
        "emta": "متى",
        "imta": "متى",
        "kaif": "كيف",
        "kaef": "كيف",
        "keef": "كيف",
        "kif": "كيف",
        "shlon": "كيف",
        "laish": "لماذا",
        "leesh": "لماذا",
        "lesh": "لماذا",
        "kam": "كم",
        "abi": "ابي",
        "abgha": "ابي",
        "abga": "ابي",
        "ab8a": "ابي",
        "ba3d": "بعد",
        "3ndkm": "عندكم",
        "3indkum": "عندكم",
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
_PREFIXES: Final = ("وبال", "وال", "بال", "فال", "كال", "هال", "لل", "ال")
# No dual "ان": it would cut "عنوان" and not "عنوانكم", two stems for one word.
_SUFFIXES: Final = ("هما", "كم", "هم", "ها", "نا", "ني", "ات", "ون", "ين", "وا", "يه", "ه", "ي")
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
            return _unsuffixed(word[len(prefix) :])[0]
    if word[:1] in ("و", "ف", "ب", "ل") and len(word) >= 5:
        # "وعندي" is "و" + "عندي", but "فرعكم" is "فرع" + "كم": the reading that finds
        # an ending wins.
        stem, cut = _unsuffixed(word[1:])
        whole, whole_cut = _unsuffixed(word)
        return whole if whole_cut and not cut else stem
    return _unsuffixed(word)[0]


def _unsuffixed(word: str) -> tuple[str, bool]:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)], True
    return word, False


def _arabizi_words(word: str) -> tuple[str, ...]:
    """A Latin-letter word read as Arabic ("far3" -> "فرع"), in three spellings, since
    Latin letters do not say which vowels are long: every inner vowel long ("دااوام"),
    every inner short vowel dropped ("فرع", "اتبرع"), and only the last one long with a
    final "a" as ta marbuta ("dawam" -> "دوام", "matlooba" -> "متلوبه", "salla" -> "ساله"),
    in that order."""
    for article in ("al", "el", "il"):
        if word.startswith(article) and len(word) > len(article) + 2:
            rest = _arabizi_words(word[len(article) :])
            return tuple("ال" + r for r in rest)
    units: list[tuple[str, str]] = []  # (latin, arabic), a doubled consonant once
    i = 0
    while i < len(word):
        for latin, arabic in _ARABIZI:
            if word.startswith(latin, i):
                if not (units and units[-1][0] == latin and latin not in "aeiou"):
                    units.append((latin, arabic))
                i += len(latin)
                break
        else:
            i += 1
    short_vowels = [n for n, (latin, _) in enumerate(units) if latin in ("a", "e", "i", "o", "u")]
    vowels = [n for n, (latin, _) in enumerate(units) if latin[0] in "aeiou"]
    inner = [n for n in vowels if 0 < n < len(units) - 1]
    last_inner = inner[-1] if inner else -1  # a long "oo" there leaves every "a" short
    long_: list[str] = []
    short: list[str] = []
    closing: list[str] = []
    for n, (latin, arabic) in enumerate(units):
        if n not in short_vowels:
            for spelling in (long_, short, closing):
                spelling.append(arabic)
            continue
        edge = "ا" if latin == "a" else arabic
        if n == 0:
            for spelling in (long_, short, closing):
                spelling.append(edge)
        elif n == len(units) - 1:
            long_.append(edge)
            short.append(edge)
            closing.append("ه" if latin == "a" else arabic)
        else:
            long_.append("ا" if latin == "a" else "")
            closing.append(edge if n == last_inner else "")
    return ("".join(long_), "".join(closing), "".join(short))


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
        token = _dialect(_QUESTION_WORDS.get(token, token))
        if token in _STOP_AR or token in _STOP_EN or token.isdigit() or len(token) < 2:
            continue
        if token[:1] in ("و", "ف") and token[1:] in _STOP_AR:  # "وابي", "ولا"
            continue
        if token.isascii():
            out.append(_english_stem(token))
            continue
        stem = _stem(token)
        if stem in _STOP_AR:  # "تسوونها"
            continue
        # "تكفلونهم" is "تكفلون" with an ending: the dialect list knows the stem.
        out.append(stem if stem == token or _dialect(stem) == stem else _stem(_dialect(stem)))
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


def _near(word: str, words: Mapping[str, frozenset[str]]) -> bool:
    """Whether ``words`` has one spelt nearly like ``word`` (a typo, a variant): their
    trigrams overlap by at least ``KNOWN_WORD`` (Dice)."""
    own = _grams(word)
    return any(
        2 * len(own & grams) >= KNOWN_WORD * (len(own) + len(grams)) for grams in words.values()
    )


_SKELETON = str.maketrans({"ط": "ت", "ص": "س", "ض": "د", "ظ": "ز", "ح": "ه", "ث": "ت", "ذ": "د"})


def _skeleton(word: str) -> str:
    """A word's consonants, emphatic ones as plain: what Arabizi reliably spells."""
    word = word.translate(_SKELETON)
    word = word[:-1] if word.endswith("ه") else word
    return re.sub("[اوي]", "", word)


def features(text: str) -> dict[str, float]:
    """The weighted features of a text (its words and their character trigrams)."""
    found: dict[str, float] = {}
    for word in _arabic_words(fold_arabic(text)):
        if word:
            _word_features(word, found)
    return found


def script_language(text: str) -> Language:
    """Arabic when the text has Arabic letters, else English."""
    return "ar" if any("\u0600" <= ch <= "\u06ff" for ch in text) else "en"


def _everyday() -> frozenset[str]:
    """The stems of ``_EVERYDAY``, as ``_arabic_words`` reads them."""
    nouns = _listed(
        """
        ابو ابوي ابويه ابوهم ام امي امه امهم اخو اخوي اخت اختي ولد ولدي اولاد اولادي بنت
        بنتي بنات زوج زوجي زوجه زوجتي اهل اهلي طفل ناس الناس احد صاحب اطفال عيال عيالي
        عيالنا بزران يهال
        يوم ايام اسبوع اسابيع شهر شهور اشهر سنه سنين سنوات دقيقه امس بكره بكرة اليوم
        الصبح المسا الليل الاحد الاثنين الثلاثاء الاربعاء الخميس السبت
        ريال ريالات الف قيمه قيمتها ظروف ظرفي عايش عايشه لحالي لحالها وحيد وحيده
        محتاج محتاجه محتاجين نحتاج احتاج يحتاج
        صغير صغيره جديد قديم قليل حلو غالي رخيص تعبان كامل كامله سعر اسعار طريقه طريقة
        اشتري نشتري يشتري اشتريت شراء
        time today tomorrow yesterday day week month year new old buy price
        """
    )
    # Verbs of coming, going, giving, taking, saying, knowing, as cores that take the
    # dialect's person prefixes and endings ("يجون", "عطوني", "بيجيبون").
    cores = _listed(
        """
        جي جا جت جات اجي روح راح رح عطي عطى عط عطو اعط خذ اخذ حط صير صار قول قال قل خل
        خلي دري عرف فهم سمع سال حصل لقي لق بقي حس رسل ارسل قعد وقف مشي حاول طالب وصل
        رجع دخل ابغ ابي شوف هدد
        """
    )
    forms = set(nouns)
    for core in cores:
        for before in ("", "ا", "ن", "ي", "ت", "ب", "بي", "بت", "بن"):
            for after in ("", "ون", "ين", "ي", "ني", "ه", "ها", "هم", "نا", "ت", "وا", "و", "تو"):
                forms.add(before + core + after)
    subjects = {stem for canonical in set(_DIALECT.values()) for stem in _arabic_words(canonical)}
    return (
        frozenset(stem for form in forms if _dialect(form) == form for stem in _arabic_words(form))
        - subjects
    )


# Everyday words a question about anything may carry: family, time, giving and taking,
# coming and going. They count in the score but not in what tells a question's subject
# (``KnowledgeIndex.subject`` and ``coverage``): "ابي اشتري جوال جديد" is not about a
# new address, and "ولدي" does not make a question about something else. Not the words
# the dialect list turns into a subject ("مريض" is "علاج").
_EVERYDAY: Final = _everyday()


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
        # What each entry knows (its words, each with its trigrams), for the coverage check.
        self._known: list[dict[str, frozenset[str]]] = []
        grams_of: dict[str, frozenset[str]] = {}
        for entry in self.entries:
            known_words = {
                w
                for text in (entry.question, *entry.alternatives, entry.answer)
                for w in content_words(text)
            }
            self._known.append(
                {w: grams_of.setdefault(w, frozenset(_grams(w))) for w in known_words}
            )
        # Every word of the base, by trigram, to tell a word no entry knows (the subject
        # of a question about something else) from a typo of a known one.
        self._grams_of = grams_of
        # Arabizi says little of which letter or vowel is meant ("t": ت or ط): the
        # consonants' skeleton finds "مطلوب" for "matlooba".
        self._skeletons: dict[str, list[str]] = defaultdict(list)
        for word in grams_of:
            if not word.isascii():
                self._skeletons[_skeleton(word)].append(word)
        self._vocabulary: dict[str, list[str]] = defaultdict(list)
        for word, grams in grams_of.items():
            for gram in grams:
                self._vocabulary[gram].append(word)
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
            arabizi: dict[str, float] = {}
            for stems in self._arabizi(text):
                for stem in stems:
                    _word_features(stem, arabizi, 1.0 / len(stems))
            for number, score in self._scores(arabizi).items():
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
        text = self._spaced(text)
        leaders = self.scores(text, _LEADERS)
        # Only the leaders matter, and only those the question may be about (``subject``).
        subjects = {n: self.subject(text, n) for _, n in leaders}
        ranked = [(s, n) for s, n in leaders if _about(*subjects[n], s)]
        # An entry far behind one the question is not about is no answer either.
        if not ranked or ranked[0][0] < max(CLOSE_AT, leaders[0][0] * CLOSE_SHARE):
            return KnowledgeMatch("none", (), leaders[0][0] if leaders else 0.0)
        wanted = script_language(text) if language is None else language
        if script_language(text) == "en":
            wanted = "en" if self.entries[ranked[0][1]].language == "en" else wanted
        top_score, top = ranked[0]
        top_entry = self.entries[top]
        rivals = [
            (score, self.entries[n])
            for score, n in ranked[1:]
            if not self._same_matter(self.entries[n], top_entry)
        ]
        second = rivals[0][0] if rivals else 0.0
        clear = top_score - second >= SURE_MARGIN or second < CLOSE_AT
        known, unknown = subjects[top]
        # One word in common is not enough to be sure, unless the entry knows every other
        # word too, everyday ones included ("ابي اشتري جوال جديد" is not about a new number).
        enough = known >= 2 or self._knows_all(text, top)
        sure = top_score >= SURE_AT and clear and enough and known > 2 * unknown
        if sure and self.coverage(text, top) > SURE_COVERAGE:
            return KnowledgeMatch("sure", (self._in(top_entry, wanted),), top_score)
        candidates = [self._in(top_entry, wanted)]
        for score, entry in rivals:
            if len(candidates) >= MAX_CANDIDATES or score < top_score * CLOSE_SHARE:
                break
            if score >= CLOSE_AT * 0.8:
                twin = self._in(entry, wanted)
                if all(not self._same_matter(twin, c) for c in candidates):
                    candidates.append(twin)
        return KnowledgeMatch("close", tuple(candidates), top_score)

    def _arabizi(self, text: str) -> list[tuple[str, ...]]:
        """A Latin-letter text read as Arabic: per word, the stems of its spellings that
        the base knows, or else all of them (the short spelling first). Nothing for a
        text with an English function word ("what is 2+2"): that is English."""
        latins = _LATIN_WORD.findall(fold_arabic(text))
        if any(latin in _STOP_EN or latin in _ASKING for latin in latins):
            return []
        read = []
        for latin in latins:
            if latin in ("al", "el", "il", "l") or latin.isdigit():
                continue
            spellings = (latin,) if latin in _QUESTION_WORDS else _arabizi_words(latin)[::-1]
            stems = list(dict.fromkeys(w for s in spellings for w in _arabic_words(s) if w))
            known = [w for w in stems if "w:" + w in self._idf]
            if not known and latin not in _QUESTION_WORDS:
                for stem in stems:
                    alike = self._skeletons.get(_skeleton(stem), [])
                    if len(_skeleton(stem)) < 3:  # "سل": only a word that starts alike
                        alike = [w for w in alike if w[0] == stem[0]][:2]
                    if len(_skeleton(stem)) >= 3 or len(alike) == 1:
                        known.extend(w for w in alike if w not in known)
            if stems:
                read.append(tuple(known or stems))
        return read

    def _spaced(self, text: str) -> str:
        """``text`` with a space put back between two known words run together
        ("طريقةالتسجيل"), where a word is unknown to the base as it stands."""
        if text.isascii():
            return text
        tokens = fold_arabic(text).split()
        for n, token in enumerate(tokens):
            if len(token) < 6 or self._known_token(token) is not False:
                continue
            for cut in range(2, len(token) - 1):
                left, right = self._known_token(token[:cut]), self._known_token(token[cut:])
                if left is not False and right is not False and (left or right):
                    tokens[n] = f"{token[:cut]} {token[cut:]}"
                    break
        return " ".join(tokens)

    def _known_token(self, token: str) -> bool | None:
        """True for a token whose words the base has, None for a word of no meaning of
        its own ("ما", "في"), False otherwise."""
        words = _arabic_words(token)
        if not words:
            return None
        return all("w:" + w in self._idf or w in _EVERYDAY for w in words)

    def _content(self, text: str, number: int) -> list[str]:
        """The question's content words, as Arabic ones for an Arabic entry and Arabizi."""
        if script_language(text) == "en" and self.entries[number].language == "ar":
            return [stems[0] for stems in self._arabizi(text) if stems[0] not in _ASKING]
        return content_words(text)

    def _asked(self, text: str, number: int) -> list[str]:
        """The question's content words that can tell its subject (no everyday ones)."""
        return [word for word in self._content(text, number) if word not in _EVERYDAY]

    def _in_vocabulary(self, word: str) -> bool:
        """Whether some entry has ``word`` or a word spelt nearly like it."""
        if "w:" + word in self._idf:
            return True
        own = _grams(word)
        shared: dict[str, int] = defaultdict(int)
        for gram in own:
            for known in self._vocabulary.get(gram, ()):
                shared[known] += 1
        return any(
            2 * count >= KNOWN_WORD * (len(own) + len(self._grams_of[known]))
            for known, count in shared.items()
        )

    def subject(self, text: str, number: int) -> tuple[int, int]:
        """How many of the question's content words (everyday ones aside) the entry at
        ``number`` knows, and how many no entry knows.

        A question may be about an entry, as far as words tell, when the entry knows
        more of its words than no entry knows (as many only with a good score, see
        ``CLOSE_EVEN_AT``). Known words outnumbered by unknown ones are how a question
        about something else meets an entry: "رقم" in "ابي رقم مطعم قريب". A sure answer
        needs more than twice as many known words ("كم سعر الريال مقابل الدولار" is not
        about fees) and two of them, unless one is the whole question.
        """
        words = self._known[number]
        known = unknown = 0
        for word in self._asked(text, number):
            if word in words or _near(word, words):
                known += 1
            elif not self._in_vocabulary(word):
                unknown += 1
        return known, unknown

    def _knows_all(self, text: str, number: int) -> bool:
        words = self._known[number]
        return all(word in words or _near(word, words) for word in self._content(text, number))

    def coverage(self, text: str, number: int) -> float:
        """How much of the question the entry at ``number`` knows: the share of its
        content words, each weighed by its IDF (a word no entry has weighs the most)."""
        asked = self._asked(text, number)
        if not asked:
            return 0.0
        words = self._known[number]
        known = total = 0.0
        for word in asked:
            weight = self._idf.get("w:" + word, self._unseen_idf)
            total += weight
            if word in words or _near(word, words):
                known += weight
        return known / total

    def _same_matter(self, a: KnowledgeEntry, b: KnowledgeEntry) -> bool:
        """The same entry, or its twin in the other language."""
        return a.id == b.id or (bool(a.topic) and a.topic == b.topic and a.language != b.language)

    def _in(self, entry: KnowledgeEntry, language: Language) -> KnowledgeEntry:
        """``entry``, or its twin in ``language`` when the base has exactly one."""
        if entry.language == language or not entry.topic:
            return entry
        twins = self._twins.get((entry.topic, language), [])
        return twins[0] if len(twins) == 1 else entry


def _about(known: int, unknown: int, score: float) -> bool:
    """Whether a question may be about an entry that knows ``known`` of its words, with
    ``unknown`` words no entry knows (``KnowledgeIndex.subject``) and ``score``."""
    return known > unknown or (known == unknown >= 1 and score >= CLOSE_EVEN_AT)


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
