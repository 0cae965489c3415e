"""Typed settings: a TOML file, overridden by TAWASUL_<SECTION>__<KEY> variables, checked once."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.templates import TemplateKind
from bot.texts import OwnWordingError, read_own_wording
from flows.catalogue import DEFAULT_NEEDS
from flows.hours import DEFAULT_WORKING_HOURS, parse_working_hours
from flows.types import (
    BUILT_IN_NOTICE,
    AppointmentRules,
    FlowSettings,
    Language,
    Need,
    OpeningHours,
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdy])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any) -> timedelta:
    """Read ``"90s"``, ``"30m"``, ``"24h"``, ``"14d"`` or ``"5y"`` (365 days a year) as a
    positive duration."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValueError('expected a positive duration such as "90s", "30m", "24h" or "14d"')
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "y":
        return timedelta(days=365 * amount)
    return timedelta(**{_UNITS[unit]: amount})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Asia/Riyadh") from None
    return value


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """Read ``"22:00-08:00"`` as (start, end); the span may cross midnight."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError('expected "HH:MM-HH:MM", for example "22:00-08:00"') from None
    return start, end


def _check_quiet_hours(value: str) -> str:
    parse_quiet_hours(value)
    return value


def _check_working_hours(value: str) -> str:
    parse_working_hours(value)
    return value


def _check_content_sid(value: str) -> str:
    if not re.fullmatch(r"HX[0-9a-fA-F]{32}", value):
        raise ValueError("expected a Twilio Content SID: HX followed by 32 hex digits")
    return value


def _check_template_kinds(value: dict[str, Any]) -> dict[str, Any]:
    """Keys naming a kind of template that nothing sends are refused: a typo, or a kind
    that was never built, would otherwise wait for a message that never comes."""
    unknown = sorted(set(value) - set(TemplateKind))
    if unknown:
        raise ValueError(
            f"no message is sent as {', '.join(map(repr, unknown))}: "
            f"the kinds are {', '.join(TemplateKind)}"
        )
    return value


def _check_public_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            "expected the address the platforms reach, such as https://bot.example.org"
        )
    return value.rstrip("/")


def _check_origin(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", value):
        raise ValueError(
            "expected a site's origin, scheme and host only, such as https://charity.org.sa"
        )
    return value.rstrip("/").lower()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///tawasul.db"


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: Annotated[str, AfterValidator(_check_public_url)] | None = None
    media_dir: str = "media"
    # Attachments kept for one sender (a phone, a chat) within the window, in number and
    # bytes; beyond either, the platform's reference is kept instead of the file.
    media_files_per_beneficiary: int = Field(30, ge=0, le=100_000)
    media_bytes_per_beneficiary: int = Field(50_000_000, ge=0)
    media_quota_window: Duration = timedelta(days=30)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client;
    # from anyone else the header is ignored, so it cannot be forged.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Sites allowed to show the web chat in a frame (the charity's own website); none
    # but this server when empty.
    chat_embed_origins: list[Annotated[str, AfterValidator(_check_origin)]] = Field(
        default_factory=list
    )


class TelegramSettings(_Section):
    token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org"
    staff_chat_id: int | None = Field(None, lt=0)  # groups have negative ids
    # Telegram's broadcast limit (paid broadcasts raise it); one per chat a second stays.
    messages_per_second: float = Field(30.0, gt=0, le=100_000)
    # Posts to the staff group a minute (Telegram allows a group 20; 80% of it).
    staff_posts_per_minute: float = Field(16.0, gt=0, le=100_000)
    # Telegram's limit for one chat: keep 1. Only a test server (or a local Bot API
    # server that does not keep it) has a reason to raise it.
    messages_per_chat_per_second: float = Field(1.0, gt=0, le=100_000)


class WhatsAppSettings(_Section):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    sms_from_number: str | None = None
    api_base_url: str = "https://api.twilio.com"
    # The sender's limit; the outbox uses at most 80% of it so replies always have room.
    messages_per_second: float = Field(1.0, gt=0, le=100_000)
    # A proactive WhatsApp message outside the 24-hour window, with no template for its
    # kind, goes by SMS instead when this is on.
    sms_fallback: bool = True
    # Approved templates by kind of proactive message: kind -> Twilio Content SID (HX...).
    templates: Annotated[
        dict[str, Annotated[str, AfterValidator(_check_content_sid)]],
        AfterValidator(_check_template_kinds),
    ] = Field(default_factory=dict)


def _check_template_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]{1,512}", value):
        raise ValueError("expected a Meta template name: lowercase letters, digits and _")
    return value


class WhatsAppCloudSettings(_Section):
    """WhatsApp through Meta's Cloud API; unset ``phone_number_id`` leaves it off."""

    phone_number_id: Annotated[str, Field(pattern=r"^[0-9]{1,30}$")] | None = None
    access_token: SecretStr | None = None
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    api_base_url: str = "https://graph.facebook.com"
    api_version: str = Field("v23.0", pattern=r"^v[0-9]+\.[0-9]+$")
    # The number's throughput (Meta starts every number at 80 a second); the outbox uses
    # at most 80% of it so that replies always have room.
    messages_per_second: float = Field(80.0, gt=0, le=100_000)
    # Approved templates by kind of proactive message: kind -> template name.
    templates: Annotated[
        dict[str, Annotated[str, AfterValidator(_check_template_name)]],
        AfterValidator(_check_template_kinds),
    ] = Field(default_factory=dict)


def _read_need(value: Any) -> Any:
    """A need is a table {key, ar, en}; a plain string serves as key and both labels."""
    if isinstance(value, str):
        return {"key": value, "ar": value, "en": value}
    return value


class NeedSettings(_Section):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    ar: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=60)


class OrganizationSettings(_Section):
    name: str = "جمعية تواصل الخيرية"
    decision_days: int = Field(14, ge=1, le=365)
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Asia/Riyadh"
    needs: list[Annotated[NeedSettings, BeforeValidator(_read_need)]] = Field(
        default_factory=lambda: [NeedSettings(key=n.key, ar=n.ar, en=n.en) for n in DEFAULT_NEEDS],
        min_length=1,
        max_length=20,
    )
    quiet_hours: Annotated[str, AfterValidator(_check_quiet_hours)] = "22:00-08:00"
    # The charity's phone number, for knowledge base answers ({organization.phone}).
    phone: str = Field("", max_length=40)
    working_hours: Annotated[str, AfterValidator(_check_working_hours)] = DEFAULT_WORKING_HOURS

    @field_validator("needs")
    @classmethod
    def _unique_keys(cls, needs: list[NeedSettings]) -> list[NeedSettings]:
        keys = [need.key for need in needs]
        if len(keys) != len(set(keys)):
            raise ValueError("each need needs its own key")
        return needs


class HandoffSettings(_Section):
    keywords: list[str] = Field(
        default_factory=lambda: ["موظف", "الموظف", "انسان", "شخص", "staff", "agent", "human"]
    )
    crisis_words: list[str] = Field(
        default_factory=lambda: ["انتحار", "انتحر", "اقتل نفسي", "suicide", "kill myself"]
    )
    hotline_text: str = (
        "إذا كنت في خطر الآن فاتصل بالطوارئ على 911، أو بخط الدعم النفسي 937. / "
        "If you are in danger now, call 911, or the mental health line 937."
    )


class FollowupSettings(_Section):
    intake_reminder_after: Duration = timedelta(hours=24)
    intake_expire_after: Duration = timedelta(days=7)
    rating_prompt_after: Duration = timedelta(days=2)
    rating_reminder_after: Duration = timedelta(days=2)
    checkin_every: Duration = timedelta(days=7)
    handoff_unclaimed_after: Duration = timedelta(minutes=30)
    # A proactive message still unsent this long after it was due is dropped as "too old
    # to send" rather than delivered late; too_old overrides it per kind of message.
    too_old_after: Duration = timedelta(hours=48)
    too_old: Annotated[dict[str, Duration], AfterValidator(_check_template_kinds)] = Field(
        default_factory=dict
    )


def _check_working_days(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]?d", value.strip()):
        raise ValueError('write it as working days, e.g. "5d" (1d to 99d)')
    return value.strip()


class FeedbackSettings(_Section):
    """Suggestions, complaints and thanks (``bot.feedback``)."""

    # Counted in working days (Sunday to Thursday), the holidays below not counted;
    # after it managers are alerted and the feedback is marked overdue.
    answer_within: Annotated[str, AfterValidator(_check_working_days)] = "5d"
    holidays: list[date] = Field(default_factory=list, max_length=400)

    @property
    def answer_days(self) -> int:
        return int(self.answer_within.removesuffix("d"))


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday is 0
Weekday = Literal["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
SAUDI_WEEK: tuple[Weekday, ...] = ("sun", "mon", "tue", "wed", "thu")


class AppointmentHoursSettings(_Section):
    """One ``[[appointments.hours]]`` table: when a branch receives interviews."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    branch: str = Field(min_length=1, max_length=40)
    # The Saudi week by default: Sunday to Thursday.
    days: list[Weekday] = Field(
        default_factory=lambda: list(SAUDI_WEEK), min_length=1, max_length=7
    )
    from_: time = Field(validation_alias=AliasChoices("from", "from_"))
    to: time
    capacity: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> AppointmentHoursSettings:
        if self.to <= self.from_:
            raise ValueError(f"branch {self.branch!r}: 'to' must come after 'from'")
        if len(set(self.days)) != len(self.days):
            raise ValueError(f"branch {self.branch!r}: a day is named twice")
        return self

    def opening_hours(self) -> OpeningHours:
        weekdays = frozenset(WEEKDAY_NAMES.index(day) for day in self.days)
        return OpeningHours(self.branch, weekdays, self.from_, self.to, self.capacity)


class AppointmentSettings(_Section):
    """Interviews with the social researcher (menu option 7, ``flows.appointments``)."""

    slot_minutes: int = Field(30, ge=5, le=480)
    days_ahead: int = Field(14, ge=1, le=90)
    # Reminders before an appointment, each one message (``followups``).
    reminders: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=2)], max_length=5
    )
    closed_dates: list[date] = Field(default_factory=list, max_length=400)
    hours: list[AppointmentHoursSettings] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> AppointmentSettings:
        length = timedelta(minutes=self.slot_minutes)
        for index, hours in enumerate(self.hours):
            span = datetime.combine(date.min, hours.to) - datetime.combine(date.min, hours.from_)
            if span < length:
                raise ValueError(
                    f"branch {hours.branch!r}: {hours.from_:%H:%M}-{hours.to:%H:%M} is shorter "
                    f"than one slot ({self.slot_minutes} minutes)"
                )
            for other in self.hours[:index]:
                if (
                    other.branch == hours.branch
                    and set(other.days) & set(hours.days)
                    and other.from_ < hours.to
                    and hours.from_ < other.to
                ):
                    raise ValueError(f"branch {hours.branch!r}: two [[appointments.hours]] overlap")
        if len(set(self.reminders)) != len(self.reminders):
            raise ValueError("reminders: the same reminder is named twice")
        return self

    def rules(self) -> AppointmentRules:
        return AppointmentRules(
            hours=tuple(hours.opening_hours() for hours in self.hours),
            slot_minutes=self.slot_minutes,
            days_ahead=self.days_ahead,
            reminders=tuple(sorted(self.reminders, reverse=True)),
            closed_dates=tuple(self.closed_dates),
        )


class InboundSettings(_Section):
    """Limits on what comes in: per sender, and the engine's queue."""

    # A sender may send this many messages at once, then per_sender_per_minute; beyond
    # it their messages are stored, not answered, and they are asked once to wait.
    per_sender_burst: int = Field(20, ge=1, le=10_000)
    per_sender_per_minute: float = Field(30.0, gt=0, le=100_000)
    # Messages waiting for the engine at most; a webhook beyond it waits up to
    # queue_wait for room, then is answered 503 with Retry-After (the platform resends).
    queue_limit: int = Field(1000, ge=1, le=1_000_000)
    queue_wait: Duration = timedelta(seconds=10)
    # When a webhook is answered: "answered", once the reply is stored with the message;
    # "stored", once the message is, its turn following at once from the inbox (the
    # platform's wait no longer grows with the load; a crash leaves nothing unanswered);
    # "auto": "stored" on SQLite, "answered" on PostgreSQL (where the inbox's extra
    # statements still cost more than they give: docs/decisions.md, "The inbox").
    acknowledge: Literal["auto", "answered", "stored"] = "auto"


class TextSettings(_Section):
    """The charity's own wording of the bot's sentences (see bot/texts.py)."""

    # .po files (from `tawasul texts export-po`), relative to the working directory.
    overrides: list[Path] = Field(default_factory=list)
    _wording: dict[str, dict[Language, str]] = PrivateAttr(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _checked(cls, paths: list[Path]) -> list[Path]:
        # Here, so that a refusal names texts.overrides; kept by _read below.
        try:
            read_own_wording(paths)
        except OwnWordingError as exc:
            raise ValueError(str(exc)) from None
        return paths

    @model_validator(mode="after")
    def _read(self) -> TextSettings:
        self._wording = read_own_wording(self.overrides)
        return self

    @property
    def wording(self) -> dict[str, dict[Language, str]]:
        """The sentences the charity changed, by key and language, checked."""
        return self._wording


class PrivacySettings(_Section):
    """Personal data under the Saudi PDPL: the notice asked before an intake, retention."""

    # The version of the privacy notice asked before each beneficiary's first intake:
    # the built-in one by default (PDPL consent out of the box). A new version is asked
    # again at the next intake; an explicit empty value asks none (for a charity that
    # collects consent another way).
    notice_version: str = BUILT_IN_NOTICE
    # The notice's full text, linked in the two lines the bot says.
    notice_url: str = ""
    # Personal data is purged this long after a request is closed.
    retention: Duration = timedelta(days=5 * 365)
    # The key personal data is encrypted under: 32 random bytes in base64. Give it by the
    # environment (TAWASUL_PRIVACY__KEY) in production; required with PostgreSQL. Unset
    # with SQLite, a key file beside the database is used (<database>.key, mode 0600).
    key: SecretStr | None = None
    # Keys used before `key` (base64 too), still read until `tawasul privacy rotate-key`
    # has re-encrypted everything under `key`.
    previous_keys: list[SecretStr] = Field(default_factory=list)


class Settings(BaseSettings):
    """The whole configuration; every key is documented in config.example.toml."""

    model_config = SettingsConfigDict(
        env_prefix="TAWASUL_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    telegram: TelegramSettings = TelegramSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    whatsapp_cloud: WhatsAppCloudSettings = WhatsAppCloudSettings()
    organization: OrganizationSettings = OrganizationSettings()
    handoff: HandoffSettings = HandoffSettings()
    followups: FollowupSettings = FollowupSettings()
    inbound: InboundSettings = InboundSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    appointments: AppointmentSettings = AppointmentSettings()
    texts: TextSettings = TextSettings()

    privacy: PrivacySettings = PrivacySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment wins over them.
        return env_settings, init_settings

    def flow_settings(self) -> FlowSettings:
        org, handoff = self.organization, self.handoff
        return FlowSettings(
            organization_name=org.name,
            needs=tuple(Need(n.key, n.ar, n.en) for n in org.needs),
            decision_days=org.decision_days,
            timezone=org.timezone,
            handoff_keywords=tuple(handoff.keywords),
            crisis_words=tuple(handoff.crisis_words),
            hotline_text=handoff.hotline_text,
            phone=org.phone,
            working_hours=org.working_hours,
            feedback_answer_days=self.feedback.answer_days,
            holidays=tuple(self.feedback.holidays),
            appointments=self.appointments.rules(),
            notice_version=self.privacy.notice_version.strip(),
            notice_url=self.privacy.notice_url.strip(),
            retention_days=max(1, self.privacy.retention.days),
        )


def template_warnings(settings: Settings) -> list[str]:
    """Lines for the operator about kinds of template that are sent but not configured
    (with WhatsApp set up): such a message outside the 24-hour window goes by SMS or fails."""
    whatsapp, cloud = settings.whatsapp, settings.whatsapp_cloud
    fallback = "go by SMS" if whatsapp.sms_fallback and whatsapp.account_sid else "fail"
    lines = []
    for section, configured, templates in (
        ("whatsapp", whatsapp.account_sid, whatsapp.templates),
        ("whatsapp_cloud", cloud.phone_number_id, cloud.templates),
    ):
        missing = [kind for kind in TemplateKind if kind not in templates]
        if configured and missing:
            lines.append(
                f"{section}.templates has no template for {', '.join(missing)}: outside "
                f"WhatsApp's 24-hour window these messages {fallback}"
            )
    return lines


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is the line to show the operator."""


def resolve_config_path(explicit: str | None) -> Path | None:
    """--config, else $TAWASUL_CONFIG, else ./config.toml when present, else None (embedded)."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("TAWASUL_CONFIG"):
        return Path(env)
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(path: Path | None) -> Settings:
    """Read and check the configuration, raising ConfigError with one readable line."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{key}: {message}")
    return "invalid configuration: " + "; ".join(problems)
