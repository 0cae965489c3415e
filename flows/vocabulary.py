"""Words the bot recognises: greetings, menu, language, yes/no, finish, skip, thanks.

These are what beneficiaries type, not what the bot says, so they live here and not in
the catalogue. Entries are written naturally and folded once here (``text.phrase``), so
they compare equal to whatever letter variants and digits people use.
"""

from __future__ import annotations

from typing import Final

from flows.text import phrase
from flows.types import Language


def _folded(*entries: str) -> frozenset[str]:
    return frozenset(phrase(entry) for entry in entries)


MENU_WORDS: Final = _folded(
    "0", "القائمة", "قائمة", "القائمة الرئيسية", "الرئيسية", "menu", "main menu", "start"
)

GREETINGS: Final = _folded(
    "السلام عليكم",
    "السلام عليكم ورحمة الله",
    "السلام عليكم ورحمة الله وبركاته",
    "سلام عليكم",
    "سلام",
    "مرحبا",
    "مرحباً بكم",
    "أهلاً",
    "أهلاً وسهلاً",
    "أهلين",
    "هلا",
    "صباح الخير",
    "مساء الخير",
    "hi",
    "hello",
    "hey",
    "salam",
    "salaam",
    "assalamu alaikum",
    "salam alaikum",
    "good morning",
    "good evening",
)
# A greeting containing one of these words is a salam, which deserves its proper answer.
SALAM_WORDS: Final = _folded("السلام", "سلام", "salam", "salaam", "assalamu")

_LANGUAGE_NAMES: Final[tuple[tuple[Language, tuple[str, ...]], ...]] = (
    ("en", ("English", "انجليزي", "الإنجليزية", "إنجليزية", "انقليزي")),
    ("ar", ("عربي", "العربية", "عربية", "Arabic")),
)
LANGUAGE_WORDS: Final[dict[str, Language]] = {
    phrase(name): language for language, names in _LANGUAGE_NAMES for name in names
}

YES: Final = _folded(
    "نعم", "أيوه", "ايوا", "إي نعم", "أكيد", "صحيح", "تمام", "yes", "y", "yeah", "ok", "okay",
)  # fmt: skip
# Signing the declaration needs an explicit yes or "I agree", not a casual "ok".
SIGN: Final = _folded(
    "نعم", "نعم أوافق", "أوافق", "موافق", "أقر", "yes", "agree", "i agree", "yes i agree",
)  # fmt: skip
NO: Final = _folded("لا", "كلا", "no", "n", "nope")

# Finish the optional documents step (also when there are none).
DOCUMENTS_DONE: Final = _folded(
    "تم", "انتهيت", "خلصت", "done", "finish", "finished",
    "لا يوجد", "لايوجد", "ما عندي", "ما في", "لا", "no", "none", "skip", "تخطي", "تخطى",
)  # fmt: skip
# Skip the optional rating comment.
SKIP: Final = _folded("تخطي", "تخطى", "skip", "لا", "no", "لا شكراً", "no thanks", "لا يوجد", "none")

THANKS: Final = _folded(
    "شكراً", "شكراً لك", "شكراً لكم", "مشكور", "مشكورين",
    "جزاكم الله خير", "جزاكم الله خيراً", "جزاك الله خير", "جزاك الله خيراً",
    "thanks", "thank you", "thx",
)  # fmt: skip
# A message of these alone (any number of them, skin tones and variation selectors aside)
# thanks, as people do on WhatsApp: 👍 🙏 ❤️ 🌹.
THANKS_EMOJI: Final = frozenset("👍👌🙏❤♥🤍💚💙🌹💐🌷😊☺🤲")
EMOJI_MODIFIERS: Final = frozenset("\ufe0f\u200d🏻🏼🏽🏾🏿 ")

# The whole message asks for no more proactive messages (WhatsApp's STOP is ours to
# honour: Twilio handles it for SMS only), or for them again.
STOP_WORDS: Final = _folded(
    "stop", "stopall", "unsubscribe", "إيقاف", "أوقف", "توقف", "إيقاف الرسائل",
    "إلغاء الاشتراك", "الغاء الاشتراك",
)  # fmt: skip
START_WORDS: Final = _folded(
    "start", "unstop", "resume", "بدء", "بدأ", "ابدأ", "استئناف", "تشغيل الرسائل",
)  # fmt: skip

# Answers to "continue where you stopped or start over?" besides 1, 2 and the labels.
CONTINUE: Final = _folded("متابعة", "المتابعة", "إكمال", "استمرار", "كمل", "continue")
RESTART: Final = _folded("من جديد", "البدء من جديد", "جديد", "start over", "restart", "new")

# "Whom is this request for?": not one of the people offered.
SOMEONE_ELSE: Final = _folded(
    "شخص آخر", "آخر", "شخص ثاني", "someone else", "somebody else", "other", "another person",
)  # fmt: skip

# When ``handoff.keywords`` is empty the bot still promises a working word.
DEFAULT_HANDOFF_KEYWORDS: Final = ("موظف", "staff")
