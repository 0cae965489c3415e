"""The bot's sentences as gettext files for translators, and the charity's own wording
read from them at start: checked, or the start is refused with the key named."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from test_cli import run

from bot.texts import OwnWordingError, export_po, read_own_wording
from flows.catalogue import CATALOGUE, text, use_own_wording

WELCOME = "مرحباً بكم في {organization}، يسعدنا خدمتكم.\nأرسل رقم الخيار:"


@pytest.fixture(autouse=True)
def own_wording_reset() -> Iterator[None]:
    """The wording is the process's: no test leaves its own behind."""
    yield
    use_own_wording({})


def edit(path: Path, changes: dict[str, str], fuzzy: tuple[str, ...] = ()) -> None:
    """Set ``msgstr`` of some keys, as a translator's tool does."""
    with path.open("rb") as file:
        catalog = read_po(file)
    for message in catalog:
        if message.context in changes:
            message.string = changes[message.context]
        if message.context in fuzzy:
            message.flags.add("fuzzy")
    with path.open("wb") as file:
        write_po(file, catalog)


def test_export_po_writes_files_gettext_tools_read(tmp_path: Path) -> None:
    done = run(tmp_path, "texts", "export-po", "po")
    assert done.returncode == 0, done.stderr
    files = [tmp_path / "po" / name for name in ("tawasul.pot", "ar.po", "en.po")]
    assert done.stdout.split() == [str(Path("po") / f.name) for f in files]
    for language in ("ar", "en"):
        with (tmp_path / "po" / f"{language}.po").open("rb") as file:
            catalog = read_po(file)
        assert str(catalog.locale) == language
        entries = {m.context: m for m in catalog if m.id}
        assert entries.keys() == CATALOGUE.keys()
        # The sentence as the code says it, and nothing changed yet.
        assert all(m.id == CATALOGUE[k][language] and not m.string for k, m in entries.items())
    with files[1].open("rb") as file:
        welcome = next(m for m in read_po(file) if m.context == "menu.welcome")
    assert "Keep the placeholders: {organization}" in welcome.auto_comments
    assert any(c.startswith("English: Welcome to") for c in welcome.auto_comments)
    if shutil.which("msgfmt"):  # GNU gettext's own check, as translators' tools run it
        for path in files:
            checked = subprocess.run(
                ["msgfmt", "--check", "-o", "/dev/null", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert checked.returncode == 0, checked.stderr


def test_the_charitys_wording_is_used_from_start(tmp_path: Path) -> None:
    run(tmp_path, "texts", "export-po", "po")
    edit(tmp_path / "po" / "ar.po", {"menu.welcome": WELCOME})
    (tmp_path / "config.toml").write_text(
        '[organization]\nname = "جمعية البر"\n[texts]\noverrides = ["po/ar.po"]\n'
    )
    checked = run(tmp_path, "texts", "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(
        "texts.overrides: 1 sentence(s) in the charity's own wording, from 1 file(s)"
    )
    chat = run(tmp_path, "chat", lines=["السلام عليكم", "English"])
    assert chat.returncode == 0, chat.stderr
    assert "مرحباً بكم في جمعية البر، يسعدنا خدمتكم." in chat.stdout
    assert "أهلاً بك في" not in chat.stdout
    assert CATALOGUE["menu.main"]["en"] in chat.stdout  # English: not changed in ar.po
    # A new export keeps what the charity wrote, beside the sentence of the code.
    run(tmp_path, "texts", "export-po", "again")
    with (tmp_path / "again" / "ar.po").open("rb") as file:
        kept = next(m for m in read_po(file) if m.context == "menu.welcome")
    assert kept.string == WELCOME and kept.id == CATALOGUE["menu.welcome"]["ar"]


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"menu.welcome": "مرحباً بكم! أرسل رقم الخيار:"}, "menu.welcome: missing {organization}"),
        (
            {"intake.counter": "({step} من {total}) {name}"},
            "intake.counter: unknown {name} placeholder",
        ),
        ({"menu.welcome": "أهلاً {organization"}, "menu.welcome: not a valid sentence"),
    ],
)
def test_a_sentence_that_would_break_refuses_the_start(
    tmp_path: Path, changes: dict[str, str], complaint: str
) -> None:
    export_po(tmp_path / "po")
    edit(tmp_path / "po" / "ar.po", changes)
    (tmp_path / "config.toml").write_text('[texts]\noverrides = ["po/ar.po"]\n')
    refused = run(tmp_path, "chat", lines=["السلام عليكم"])
    assert refused.returncode == 2
    assert complaint in refused.stderr and "texts.overrides" in refused.stderr
    assert "po/ar.po:" in refused.stderr  # the file and line
    assert refused.stdout == ""


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ar.po"
    path.write_text(
        'msgid ""\nmsgstr ""\n"Language: ar\\n"\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgctxt "menu.welcom"\nmsgid "أهلاً"\nmsgstr "مرحباً"\n',
        encoding="utf-8",
    )
    with pytest.raises(OwnWordingError, match=r"ar\.po:7: unknown key 'menu\.welcom'"):
        read_own_wording([path])
    path.write_text(path.read_text().replace('msgctxt "menu.welcom"\n', ""), encoding="utf-8")
    with pytest.raises(OwnWordingError, match="no key"):
        read_own_wording([path])


def test_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    with pytest.raises(OwnWordingError, match=r"missing\.po: no such file"):
        read_own_wording([tmp_path / "missing.po"])
    export_po(tmp_path)
    with pytest.raises(OwnWordingError, match="its Language header must be one of ar, en"):
        read_own_wording([tmp_path / "tawasul.pot"])  # the template names no language
    (tmp_path / "broken.po").mkdir()
    with pytest.raises(OwnWordingError, match=r"broken\.po: not a readable \.po file"):
        read_own_wording([tmp_path / "broken.po"])


def test_empty_and_fuzzy_entries_keep_the_codes_wording(tmp_path: Path) -> None:
    export_po(tmp_path)
    edit(
        tmp_path / "en.po",
        {"menu.salam": "Peace be upon you too.", "common.back_hint": "Send 0 for the menu."},
        fuzzy=("common.back_hint",),
    )
    wording = read_own_wording([tmp_path / "ar.po", tmp_path / "en.po"])
    assert wording == {"menu.salam": {"en": "Peace be upon you too."}}
    use_own_wording(wording)
    assert text("en", "menu.salam") == "Peace be upon you too."
    assert text("ar", "menu.salam") == CATALOGUE["menu.salam"]["ar"]
    assert text("en", "common.back_hint") == CATALOGUE["common.back_hint"]["en"]
    use_own_wording({})
    assert text("en", "menu.salam") == CATALOGUE["menu.salam"]["en"]
