"""The catalogue for translators and the charity's own wording: gettext .po files (Babel).

``tawasul texts export-po DIR`` writes ``tawasul.pot`` and one ``ar.po`` / ``en.po`` per
language the bot speaks. In each, an entry's ``msgctxt`` is the catalogue key and its
``msgid`` the sentence as the code says it in that language; ``msgstr`` is empty where
the charity keeps that wording and holds its own where it changed it (so Poedit,
Weblate or any gettext tool shows the current sentence beside the new one).

``texts.overrides`` in the configuration names such files. They are read and checked
at start: an unknown key, a placeholder missing or added (``{reference}``) or a
sentence that is not a valid template refuses the start with the file, line and key
named. Empty and fuzzy entries are left out, as gettext does.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from flows.catalogue import CATALOGUE
from flows.types import Language

LANGUAGES: tuple[Language, ...] = ("ar", "en")
PROJECT = "Tawasul"
TEMPLATE = "tawasul.pot"


class OwnWordingError(ValueError):
    """A file of the charity's own wording that cannot be used; ``str()`` names where."""


def placeholders(sentence: str) -> set[str]:
    """The ``{names}`` a sentence fills in; ValueError when it is not a valid template."""
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name is not None}


def export_po(directory: Path, own: Mapping[str, Mapping[Language, str]] = {}) -> list[Path]:
    """Write the template and one .po file per language into ``directory``; the
    charity's ``own`` wording (when given) as the translations. Returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    template = _catalog(None)
    by_language = {language: _catalog(language) for language in LANGUAGES}
    for key in sorted(CATALOGUE):
        entry = CATALOGUE[key]
        names = sorted(placeholders(entry["ar"]) | placeholders(entry["en"]))
        hint = (
            [f"Keep the placeholders: {', '.join('{' + n + '}' for n in names)}"] if names else []
        )
        template.add(entry["ar"], context=key, auto_comments=[f"English: {entry['en']}", *hint])
        for language, catalog in by_language.items():
            other: Language = "en" if language == "ar" else "ar"
            catalog.add(
                entry[language],
                string=own.get(key, {}).get(language, ""),
                context=key,
                auto_comments=[f"{_NAMES[other]}: {entry[other]}", *hint],
            )
    written = [directory / TEMPLATE]
    _write(written[0], template)
    for language, catalog in by_language.items():
        written.append(directory / f"{language}.po")
        _write(written[-1], catalog)
    return written


def read_own_wording(paths: Iterable[Path]) -> dict[str, dict[Language, str]]:
    """The charity's sentences from its .po files, by key and language, each checked
    against the catalogue; OwnWordingError naming the file, line and key if not."""
    wording: dict[str, dict[Language, str]] = {}
    for path in paths:
        try:
            with path.open("rb") as file:
                catalog = read_po(file, abort_invalid=True)
        except FileNotFoundError:
            raise OwnWordingError(f"{path}: no such file") from None
        except Exception as exc:  # Babel's PoFileError, a decoding error, a directory…
            raise OwnWordingError(f"{path}: not a readable .po file ({exc})") from None
        language = next((lang for lang in LANGUAGES if lang == str(catalog.locale)), None)
        if language is None:
            raise OwnWordingError(
                f"{path}: its Language header must be one of {', '.join(LANGUAGES)}"
            )
        for message in catalog:
            sentence = message.string
            if not message.id or not isinstance(sentence, str) or not sentence.strip():
                continue  # the header, and sentences the charity keeps as they are
            if message.fuzzy:
                continue
            where = f"{path}:{message.lineno}"
            key = message.context
            if key is None or key not in CATALOGUE:
                named = f"unknown key {key!r}" if key else "no key (msgctxt)"
                raise OwnWordingError(f"{where}: {named}: not a sentence of the catalogue")
            _check(where, key, sentence, CATALOGUE[key][language])
            wording.setdefault(key, {})[language] = sentence
    return wording


def _check(where: str, key: str, sentence: str, ours: str) -> None:
    try:
        theirs = placeholders(sentence)
    except ValueError as exc:
        raise OwnWordingError(f"{where}: {key}: not a valid sentence ({exc})") from None
    expected = placeholders(ours)
    problems = []
    if missing := expected - theirs:
        problems.append("missing " + ", ".join("{" + n + "}" for n in sorted(missing)))
    if extra := theirs - expected:
        problems.append("unknown " + ", ".join("{" + n + "}" for n in sorted(extra)))
    if problems:
        raise OwnWordingError(f"{where}: {key}: {'; '.join(problems)} placeholder")


_NAMES = {"ar": "Arabic", "en": "English"}


def _catalog(language: Language | None) -> Catalog:
    return Catalog(
        locale=language,
        project=PROJECT,
        charset="utf-8",
        fuzzy=False,
    )


def _write(path: Path, catalog: Catalog) -> None:
    with path.open("wb") as file:
        write_po(file, catalog, width=0, include_previous=False)
