"""Configuration: file, environment overrides, and one clear line for every mistake."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.config import (
    ConfigError,
    Settings,
    load_settings,
    parse_duration,
    resolve_config_path,
    template_warnings,
)
from bot.templates import TemplateKind

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in _keys(Settings):
        section, name = key.split(".")
        section_text = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
        documented = f"{name} =" in section_text or f"[{section}.{name}]" in text
        assert documented, f"{key} is not documented in config.example.toml"


def test_example_values_are_the_defaults() -> None:
    assert load_settings(EXAMPLE).model_dump() == Settings().model_dump()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\nurl = "sqlite:///a.db"\n[server]\nport = 9000\n')
    monkeypatch.setenv("TAWASUL_DATABASE__URL", "sqlite:///b.db")
    settings = load_settings(config)
    assert settings.database.url == "sqlite:///b.db"
    assert settings.server.port == 9000


def test_secrets_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAWASUL_TELEGRAM__TOKEN", "123:secret-token")
    settings = load_settings(None)
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:secret-token"
    assert "secret-token" not in repr(settings)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[organization]\ndecision_days = 0\n", "organization.decision_days"),
        ('[organization]\ntimezone = "Mars/Base"\n', "organization.timezone: expected an IANA"),
        ('[organization]\nquiet_hours = "late"\n', 'expected "HH:MM-HH:MM"'),
        (
            '[followups]\ncheckin_every = "7 weeks"\n',
            "followups.checkin_every: expected a positive",
        ),
        ("[server]\ncolour = 1\n", "server.colour: unknown key"),
        ("[servre]\nport = 1\n", "servre: unknown key"),
        ('[server]\nport = "eighty"\n', "server.port"),
        (
            '[organization]\nneeds = [{ key = "a", ar = "أ", en = "A" }, "a"]\n',
            "each need needs its own key",
        ),
        ("[server\nport = 1\n", "is not valid TOML"),
        (
            '[whatsapp.templates]\nhandoff_reply = "HX0123456789abcdef0123456789abcdef"\n',
            "whatsapp.templates: no message is sent as 'handoff_reply'",
        ),
        ('[followups.too_old]\nrating_promt = "7d"\n', "followups.too_old: no message is sent"),
        ('[whatsapp_cloud.templates]\nthanks = "thanks_v1"\n', "no message is sent as 'thanks'"),
    ],
)
def test_bad_values_give_one_line(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAWASUL_FOLLOWUPS__RATING_PROMPT_AFTER", "soon")
    with pytest.raises(ConfigError, match=r"followups\.rating_prompt_after"):
        load_settings(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        (" 24h", timedelta(hours=24)),
        ("14d", timedelta(days=14)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAWASUL_CONFIG", raising=False)
    assert resolve_config_path(None) is None
    (tmp_path / "config.toml").write_text("")
    assert resolve_config_path(None) == Path("config.toml")
    monkeypatch.setenv("TAWASUL_CONFIG", "/etc/tawasul.toml")
    assert resolve_config_path(None) == Path("/etc/tawasul.toml")
    assert resolve_config_path("x.toml") == Path("x.toml")


def test_needs_accept_plain_strings() -> None:
    settings = Settings(
        organization={"needs": ["food", {"key": "rent", "ar": "إيجار", "en": "Rent"}]}
    )
    needs = settings.flow_settings().needs
    assert [n.key for n in needs] == ["food", "rent"]
    assert needs[1].label("ar") == "إيجار"


def test_example_is_valid_toml() -> None:
    assert "organization" in tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_template_kinds_sent_but_not_configured_are_warned_about() -> None:
    sid = "HX0123456789abcdef0123456789abcdef"
    assert template_warnings(Settings()) == []  # no WhatsApp: nothing to warn about
    some = Settings(whatsapp={"account_sid": "AC1", "templates": {"checkin": sid}})
    [line] = template_warnings(some)
    assert "status_update" in line and "rating_prompt" in line and "checkin" not in line
    assert "go by SMS" in line
    every = {kind.value: sid for kind in TemplateKind}
    assert template_warnings(Settings(whatsapp={"account_sid": "AC1", "templates": every})) == []
    cloud = Settings(whatsapp_cloud={"phone_number_id": "123", "templates": {"checkin": "c"}})
    [line] = template_warnings(cloud)
    assert line.startswith("whatsapp_cloud.templates has no template for status_update")
