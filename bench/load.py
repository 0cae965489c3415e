"""The load driver: beneficiaries going through whole conversations over signed webhooks.

A beneficiary sends its next message only once the reply to the previous one reached the
stand-in, and a think time later. Two shapes: a closed loop (N beneficiaries as fast as
their think time allows, N stepped up until throughput stops growing) and an open loop
(messages sent at a fixed rate, each by a beneficiary that is ready for its next one).
Every inbound message is one ``Sample``: sent, acknowledged, first reply.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import re
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from bench.standins import Inbox, Recorder

CHARITY_NUMBER = "+966550000000"
WHATSAPP = "whatsapp"
TELEGRAM = "telegram"
REFERENCE = re.compile(r"REQ-[0-9]+")
GREETING = "السلام عليكم"
AGREE = "أوافق"  # the privacy notice, asked before a first intake
FIRST_NAMES = ("محمد", "أحمد", "فاطمة", "نورة", "عبدالله", "سارة", "خالد", "مريم", "سلمان", "هند")
FAMILY_NAMES = ("الزهراني", "القحطاني", "العتيبي", "الغامدي", "الشهري", "الدوسري", "المطيري")
CITIES = ("جدة", "الرياض", "مكة", "الدمام", "المدينة", "الطائف", "أبها")
DESCRIPTION = "نحتاج سلة غذائية للأسرة المكونة من خمسة أفراد"
COMMENT = "خدمة ممتازة وسريعة، شكرا لكم"
# Arabic-Indic digits, as most beneficiaries type them.
_ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def luhn_digit(first_nine: str) -> str:
    """The check digit that makes ``first_nine`` + it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(first_nine)):
        value = int(char) * (1 if position % 2 else 2)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def national_id(serial: int) -> str:
    """A distinct valid Saudi national ID for each ``serial``: 1, eight digits, Luhn."""
    first_nine = f"1{serial % 100_000_000:08d}"
    return first_nine + luhn_digit(first_nine)


@dataclass(frozen=True, slots=True)
class Step:
    """One message of a script and what the replies to it must contain (``{ref}``: the
    reference the conversation was given; ``REQ-`` captures it)."""

    text: str
    expect: str = ""


def script(channel: str, serial: int, *, upto: int | None = None) -> tuple[Step, ...]:
    """The whole conversation of one beneficiary: greeting, menu, the privacy notice
    agreed to, intake, status, rating.

    On WhatsApp the mobile is offered from the sender's number and confirmed with "نعم";
    on Telegram it is typed. ``upto`` keeps only the first steps (a conversation left
    mid-intake).
    """
    rng = random.Random(serial)
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(FIRST_NAMES)} {rng.choice(FAMILY_NAMES)}"
    mobile = "نعم" if channel == WHATSAPP else telegram_mobile(serial).translate(_ARABIC_DIGITS)
    # Each intake answer must bring the next question, numbered "(n/8)".
    steps = (
        Step(GREETING),
        Step("١", expect="لدراسة طلبك فقط"),  # the privacy notice, asked by default
        Step(AGREE, expect="(١/٨)"),
        Step(name, expect="(٢/٨)"),
        Step(national_id(serial).translate(_ARABIC_DIGITS), expect="(٣/٨)"),
        Step(mobile, expect="(٤/٨)"),
        Step(rng.choice(CITIES), expect="(٥/٨)"),
        Step("١", expect="(٦/٨)"),
        Step(DESCRIPTION, expect="(٧/٨)"),
        Step("تم", expect="(٨/٨)"),
        Step("نعم", expect="REQ-"),
        Step("٢", expect="{ref}"),
        Step("٣"),
        Step(str(rng.randint(3, 5)).translate(_ARABIC_DIGITS)),
        Step(COMMENT),
    )
    return steps if upto is None else steps[:upto]


def whatsapp_number(serial: int) -> str:
    return f"+9665{40_000_000 + serial % 50_000_000:08d}"


def telegram_mobile(serial: int) -> str:
    return f"05{90_000_000 + serial % 10_000_000:08d}"


@dataclass(slots=True)
class Sample:
    """One inbound message: when it was sent, acknowledged (HTTP status) and first answered;
    ``done`` once its fate is known, ``failed`` when that is an error."""

    channel: str
    sent: float
    acked: float = math.nan
    status: int = 0
    replied: float = math.nan
    done: bool = False
    failed: bool = False


@dataclass(slots=True)
class Tally:
    """Everything a load run observed."""

    samples: list[Sample] = field(default_factory=list)
    wrong_replies: int = 0
    conversations_finished: int = 0
    conversations_broken: int = 0
    open_loop_missed: int = 0  # sends due while no beneficiary was ready
    problems: dict[str, int] = field(default_factory=dict)

    def problem(self, what: str) -> None:
        self.problems[what] = self.problems.get(what, 0) + 1


@dataclass(frozen=True, slots=True)
class Target:
    """The server under load and the secrets its webhooks need; ``others`` are further
    processes behind the same public address, given the messages in turn with ``url``."""

    url: str
    public_url: str
    auth_token: str
    account_sid: str
    webhook_secret: str
    others: tuple[str, ...] = ()


class Beneficiary:
    """One person on one channel, going through one script (a new person per conversation)."""

    __slots__ = ("channel", "inbox", "key", "reference", "replies_seen", "serial", "steps", "turn")

    def __init__(self, channel: str, serial: int, recorder: Recorder, upto: int | None) -> None:
        self.channel = channel
        self.serial = serial
        self.steps = script(channel, serial, upto=upto)
        self.turn = 0
        self.reference = ""
        self.key = (
            f"whatsapp:{whatsapp_number(serial)}"
            if channel == WHATSAPP
            else f"tg:{7_000_000_000 + serial}"
        )
        self.inbox: Inbox = recorder.inbox(self.key)
        self.replies_seen = len(self.inbox.texts)

    @property
    def done(self) -> bool:
        return self.turn >= len(self.steps)

    def check_previous(self) -> bool:
        """Whether everything that answered the last message says what that step expects."""
        if self.turn == 0:
            return True
        expect = self.steps[self.turn - 1].expect
        replies = "\n".join(self.inbox.texts[self.replies_seen :])
        self.replies_seen = len(self.inbox.texts)
        if not expect:
            return True
        if expect == "REQ-":
            found = REFERENCE.search(replies)
            self.reference = found.group(0) if found else ""
            return found is not None
        if expect == "{ref}":
            return self.reference != "" and self.reference in replies
        return expect in replies


class Driver:
    """Sends one beneficiary's messages to the server and records each as a ``Sample``.

    Args:
        target: the server.
        recorder: the stand-ins' record of replies.
        wait_replies: False for a server that does not reply (the ceiling): a beneficiary
            goes on after the acknowledgement and its think time.
        think: seconds between a reply (or acknowledgement) and the next message, ±20%.
        reply_timeout: seconds after which a missing reply is an error.
    """

    def __init__(
        self,
        target: Target,
        recorder: Recorder,
        *,
        wait_replies: bool = True,
        think: float = 1.5,
        reply_timeout: float = 30.0,
        upto: int | None = None,
    ) -> None:
        self.target = target
        self.recorder = recorder
        self.wait_replies = wait_replies
        self.think = think
        self.reply_timeout = reply_timeout
        self.upto = upto
        self.tally = Tally()
        self._validator = RequestValidator(target.auth_token)
        self._whatsapp_url = target.public_url + "/webhooks/whatsapp"
        self._serials = itertools.count(1)
        self._ids = itertools.count(1)
        # Where the next messages go, in turn (a balancer without stickiness); the
        # failover run takes a killed process out and puts it back when restarted.
        self.urls = [target.url, *target.others]
        self._turns = itertools.count()
        self._http: aiohttp.ClientSession | None = None
        self.stopping = False

    async def __aenter__(self) -> Driver:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.reply_timeout)
        self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    def beneficiary(self, channel: str) -> Beneficiary:
        return Beneficiary(channel, next(self._serials), self.recorder, self.upto)

    def think_time(self) -> float:
        return self.think * random.uniform(0.8, 1.2)

    async def send(self, person: Beneficiary) -> bool:
        """Send ``person``'s next message; True when it was acknowledged and answered."""
        sample = await self._send(person)
        sample.done = True
        return not sample.failed

    async def _send(self, person: Beneficiary) -> Sample:
        assert self._http is not None
        text = person.steps[person.turn].text
        person.turn += 1
        before = len(person.inbox.times)
        if person.channel == WHATSAPP:
            body, headers = self._whatsapp(person, text)
            path = "/webhooks/whatsapp"
        else:
            body, headers = self._telegram(person, text)
            path = "/webhooks/telegram"
        sample = Sample(person.channel, time.perf_counter())
        self.tally.samples.append(sample)
        try:
            url = self.urls[next(self._turns) % len(self.urls)]
            async with self._http.post(url + path, data=body, headers=headers) as r:
                await r.read()
                sample.status = r.status
        except TimeoutError:
            self.tally.problem("webhook timed out")
        except aiohttp.ClientError as error:
            self.tally.problem(f"webhook failed: {type(error).__name__}")
        sample.acked = time.perf_counter()
        if sample.status != 200:
            if sample.status:
                self.tally.problem(f"webhook answered {sample.status}")
            sample.failed = True
        elif self.wait_replies:
            if await person.inbox.wait_beyond(before, self.reply_timeout):
                sample.replied = person.inbox.times[before]
            else:
                self.tally.problem("no reply within the time-out")
                sample.failed = True
        return sample

    def _whatsapp(self, person: Beneficiary, text: str) -> tuple[str, dict[str, str]]:
        message_sid = f"SM{next(self._ids):032x}"
        number = person.key.removeprefix("whatsapp:")
        params = {
            "SmsMessageSid": message_sid,
            "NumMedia": "0",
            "ProfileName": f"Beneficiary {person.serial}",
            "MessageType": "text",
            "SmsSid": message_sid,
            "WaId": number.removeprefix("+"),
            "SmsStatus": "received",
            "Body": text,
            "To": f"whatsapp:{CHARITY_NUMBER}",
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": message_sid,
            "AccountSid": self.target.account_sid,
            "From": person.key,
            "ApiVersion": "2010-04-01",
        }
        signature = self._validator.compute_signature(self._whatsapp_url, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return urlencode(params), headers

    def _telegram(self, person: Beneficiary, text: str) -> tuple[str, dict[str, str]]:
        chat_id = int(person.key.removeprefix("tg:"))
        sender = {
            "id": chat_id,
            "is_bot": False,
            "first_name": f"Beneficiary {person.serial}",
            "language_code": "ar",
        }
        number = next(self._ids)
        update = {
            "update_id": number,
            "message": {
                "message_id": number,
                "from": sender,
                "chat": {"id": chat_id, "first_name": sender["first_name"], "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": self.target.webhook_secret,
        }
        return json.dumps(update, ensure_ascii=False), headers

    def settle(self, person: Beneficiary) -> bool:
        """After the think time: check the last replies; count a finished or broken script."""
        if not self.wait_replies:
            if person.done:
                self.tally.conversations_finished += 1
            return True
        if not person.check_previous():
            self.tally.wrong_replies += 1
            self.tally.conversations_broken += 1
            self.tally.problem(f"wrong reply to step {person.turn}")
            return False
        if person.done:
            self.tally.conversations_finished += 1
        return True


def channels_for(mix: str) -> Callable[[int], str]:
    """Which channel the i-th beneficiary uses: ``mixed`` alternates, else one channel."""
    if mix == "mixed":
        return lambda i: WHATSAPP if i % 2 == 0 else TELEGRAM
    return lambda _i: mix


@dataclass(frozen=True, slots=True)
class Stage:
    """A measured window of a run: its beneficiaries (closed loop) or rate (open loop)."""

    label: str
    start: float
    end: float


async def closed_loop(
    driver: Driver,
    mix: str,
    population: int,
    *,
    recycle: bool = True,
) -> list[asyncio.Task[None]]:
    """Start ``population`` beneficiaries, each talking as fast as its think time allows
    (starts spread over one think time); returns their tasks."""
    channel_of = channels_for(mix)

    async def live(index: int) -> None:
        await asyncio.sleep(random.uniform(0, driver.think))
        while not driver.stopping:
            person = driver.beneficiary(channel_of(index))
            while not person.done and not driver.stopping:
                answered = await driver.send(person)
                await asyncio.sleep(driver.think_time())
                if not answered or not driver.settle(person):
                    if not answered:
                        driver.tally.conversations_broken += 1
                    break
            if not recycle:
                return

    return [asyncio.create_task(live(next(_task_ids))) for _ in range(population)]


_task_ids = itertools.count()


async def stop_tasks(driver: Driver, tasks: Sequence[asyncio.Task[None]]) -> None:
    """Let every beneficiary finish its current message, then stop (bounded)."""
    driver.stopping = True
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=driver.reply_timeout + 2 * driver.think)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        driver_errors(driver, done)


def driver_errors(driver: Driver, tasks: Iterable[asyncio.Task[None]]) -> None:
    """Count a beneficiary that stopped on an exception in the driver itself as an error."""
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            driver.tally.problem(f"driver error: {type(error).__name__}")


async def open_loop(
    driver: Driver,
    mix: str,
    rate: float,
    *,
    population: int,
    seconds: float | None,
    recycle: bool = True,
) -> float:
    """Send ``rate`` messages a second, each from the longest-ready beneficiary, for
    ``seconds`` (or, with ``recycle`` off, until every script is done); the seconds taken.

    A send that falls due while nobody is ready is counted as missed, not made up later.
    """
    channel_of = channels_for(mix)
    loop = asyncio.get_running_loop()
    ready: deque[Beneficiary] = deque(driver.beneficiary(channel_of(i)) for i in range(population))
    in_flight: set[asyncio.Task[None]] = set()
    next_index = itertools.count(population)

    def fresh() -> Beneficiary:
        return driver.beneficiary(channel_of(next(next_index)))

    def back(person: Beneficiary) -> None:
        if driver.settle(person) and not person.done:
            ready.append(person)
        elif recycle:
            ready.append(fresh())

    async def turn(person: Beneficiary) -> None:
        answered = await driver.send(person)
        if not answered:
            driver.tally.conversations_broken += 1
            if recycle:
                loop.call_later(driver.think_time(), lambda: ready.append(fresh()))
            return
        loop.call_later(driver.think_time(), back, person)

    started = time.perf_counter()
    sent = 0
    while not driver.stopping:
        now = time.perf_counter()
        if seconds is not None and now - started >= seconds:
            break
        due = int((now - started) * rate) + 1 - sent
        for _ in range(due):
            sent += 1
            if not ready:
                if recycle:  # else the last scripts are simply running out
                    driver.tally.open_loop_missed += 1
                continue
            task = asyncio.create_task(turn(ready.popleft()))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            task.add_done_callback(lambda done: driver_errors(driver, (done,)))
        if seconds is None and not ready and not in_flight:
            await asyncio.sleep(driver.think * 1.3)  # the last ones may still come back
            if not ready and not in_flight:
                break
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    if in_flight:
        await asyncio.wait(in_flight, timeout=driver.reply_timeout + 1)
    return time.perf_counter() - started


def driver_cpu_seconds() -> float:
    """CPU seconds this process (driver and stand-ins) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
