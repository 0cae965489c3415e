"""The appointments flow's less travelled paths, as transcripts: answers that are not
on the buttons, an appointment gone or the hours withdrawn while the beneficiary was
reading, several appointments to choose from, and the last place of a day taken."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time

from transcript import Transcript

from flows.types import (
    AnswerVisit,
    AppointmentBook,
    AppointmentRules,
    AppointmentSummary,
    BookAppointment,
    CancelAppointment,
    FlowSettings,
    OpeningHours,
)

WEEK = frozenset({6, 0, 1, 2, 3})
ONE_BRANCH = AppointmentRules(hours=(OpeningHours("الرياض", WEEK, time(8), time(10)),))
# Transcript's clock: Saturday 21 November 2026, 09:00 in Riyadh; Sunday is the first day.
SUNDAY_8 = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
SUNDAY_930 = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
MONDAY_8 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
INTERVIEW = AppointmentSummary("APT-000003", "interview", "booked", "الرياض", SUNDAY_8)
VISIT = AppointmentSummary("APT-000009", "visit", "proposed", None, MONDAY_8, "huda")


def chat(rules: AppointmentRules = ONE_BRANCH, book: AppointmentBook | None = None) -> Transcript:
    talk = Transcript(FlowSettings(organization_name="جمعية البر", appointments=rules))
    talk.appointments = book or AppointmentBook()
    talk.send("السلام عليكم")
    return talk


def booked(talk: Transcript) -> list[BookAppointment]:
    return [e for e in talk.effects if isinstance(e, BookAppointment)]


def cancelled(talk: Transcript) -> list[CancelAppointment]:
    return [e for e in talk.effects if isinstance(e, CancelAppointment)]


# --- the day and the time, typed rather than chosen ---


def test_a_branch_open_on_no_day_says_so_and_offers_a_person() -> None:
    closed = AppointmentRules(hours=(OpeningHours("الدمام", frozenset(), time(8), time(10)),))
    talk = chat(closed)
    reply = talk.send("٧")
    assert "لا توجد مواعيد متاحة في فرع الدمام خلال الأيام القادمة" in reply
    assert "أرسل ٤ للتحدث مع موظف" in reply
    assert talk.step == ("menu", "choose")
    assert booked(talk) == []


def test_a_free_day_typed_day_first_or_year_first_opens_its_times() -> None:
    for typed in ("22/11/2026", "٢٠٢٦-١١-٢٣"):
        talk = chat()
        talk.send("٧")
        reply = talk.send(typed)
        assert "الأوقات المتاحة يوم" in reply and "١- ٠٨:٠٠" in reply, typed
        assert talk.step == ("appointments", "time")


def test_a_typed_time_not_written_as_on_the_list_is_still_understood() -> None:
    talk = chat()
    talk.send("٧")
    talk.send("١")
    reply = talk.send("9.30")  # listed as ٠٩:٣٠
    assert "هل نؤكد موعد المقابلة" in reply and "٠٩:٣٠" in reply
    assert "تم حجز موعدك" in talk.send("نعم")
    assert booked(talk) == [BookAppointment("الرياض", SUNDAY_930)]


def test_the_last_time_of_a_day_taken_at_the_same_moment_offers_the_other_days() -> None:
    one_slot = AppointmentRules(hours=(OpeningHours("الرياض", WEEK, time(8), time(8, 30)),))
    talk = chat(one_slot)
    talk.send("٧")
    talk.send("١")  # Sunday
    talk.send("١")  # 08:00, its only time
    talk.gone.add(SUNDAY_8)  # someone was quicker
    reply = talk.send("نعم")
    assert "لم يعد في ذلك اليوم وقت متاح" in reply
    assert "الأيام المتاحة في فرع الرياض" in reply and "APT-" not in reply
    assert talk.step == ("appointments", "day")
    assert talk.appointments.mine == ()


# --- confirming ---


def test_a_typed_no_at_the_confirmation_books_nothing() -> None:
    talk = chat()
    for line in ("٧", "١", "١"):
        talk.send(line)
    reply = talk.send("كلا")  # not the button's label, still a no
    assert "لم نحجز أي موعد" in reply
    assert talk.step == ("menu", "choose")
    assert booked(talk) == []


def test_an_unclear_answer_at_the_confirmation_is_asked_again() -> None:
    talk = chat()
    for line in ("٧", "١", "١"):
        talk.send(line)
    reply = talk.send("ربما")
    assert "أرسل ١ للتأكيد أو ٢ للتراجع" in reply
    assert talk.step == ("appointments", "confirm")
    assert booked(talk) == []
    assert "تم حجز موعدك" in talk.send("١")


# --- an interview to come: move, cancel or keep ---


def test_keeping_the_interview_changes_nothing() -> None:
    talk = chat(book=AppointmentBook({("الرياض", SUNDAY_8): 1}, (INTERVIEW,)))
    assert "لديك موعد قادم" in talk.send("٧")
    reply = talk.send("غير ذلك")
    assert "أرسل رقم أحد الخيارات التالية" in reply
    assert talk.step == ("appointments", "existing")
    assert "بقي موعدك كما هو" in talk.send("٣")
    assert talk.step == ("menu", "choose")
    assert talk.effects == [] and talk.appointments.mine == (INTERVIEW,)


def test_an_interview_cancelled_meanwhile_is_not_offered_to_move() -> None:
    talk = chat(book=AppointmentBook({("الرياض", SUNDAY_8): 1}, (INTERVIEW,)))
    talk.send("٧")
    talk.appointments = AppointmentBook()  # staff cancelled it from the dashboard
    assert "You have no appointments to come" in talk.send("English")  # asked again
    reply = talk.send("1")
    assert "You have no appointments to come" in reply
    assert talk.step == ("menu", "choose")
    assert talk.effects == []


def test_moving_after_the_hours_were_withdrawn_offers_a_person() -> None:
    talk = chat(book=AppointmentBook({("الرياض", SUNDAY_8): 1}, (INTERVIEW,)))
    talk.send("٧")
    talk.settings = dataclasses.replace(talk.settings, appointments=AppointmentRules())
    reply = talk.send("١")  # move
    assert "لا تتوفر مواعيد للحجز عبر المحادثة حالياً" in reply
    assert talk.step == ("menu", "choose")
    assert talk.effects == [] and talk.appointments.mine == (INTERVIEW,)


def test_cancelling_asks_again_when_unclear_and_keeps_it_on_no() -> None:
    talk = chat(book=AppointmentBook({("الرياض", SUNDAY_8): 1}, (INTERVIEW,)))
    talk.send("مواعيدي")
    assert "هل تريد إلغاء الموعد APT-000003" in talk.send("٢")
    assert "أرسل ١ للتأكيد أو ٢ للتراجع" in talk.send("لست متأكداً")
    assert talk.step == ("appointments", "cancel")
    assert "بقي موعدك كما هو" in talk.send("٢")
    assert cancelled(talk) == [] and talk.appointments.mine == (INTERVIEW,)


# --- "my appointments" with more than one ---


def test_several_appointments_are_listed_and_one_is_chosen_by_its_reference() -> None:
    talk = chat(book=AppointmentBook({("الرياض", SUNDAY_8): 1}, (INTERVIEW, VISIT)))
    reply = talk.send("مواعيدي")
    assert "مواعيدك القادمة" in reply
    assert "١- APT-000003: مقابلة مع الباحث" in reply and "٢- APT-000009: زيارة منزلية" in reply
    assert "أرسل رقم أحد مواعيدك التالية" in talk.send("٣")
    assert talk.step == ("appointments", "pick")
    reply = talk.send("apt 000009")  # the reference, typed loosely
    assert "زيارة ميدانية (APT-000009)" in reply and "huda" in reply
    assert talk.step == ("appointments", "visit")


def test_a_proposed_visit_confirmed_in_words_and_an_unclear_answer_asked_again() -> None:
    talk = chat(book=AppointmentBook(mine=(VISIT,)))
    assert "زيارة ميدانية (APT-000009)" in talk.send("مواعيدي")
    assert "أرسل ١ إن كان الموعد يناسبك، أو ٢ لطلب وقت آخر" in talk.send("بعد العصر")
    assert talk.effects == []
    assert "تم تأكيد الزيارة APT-000009" in talk.send("أكيد")
    assert talk.effects == [AnswerVisit("APT-000009", True)]
    assert talk.step == ("menu", "choose")


def test_a_visit_withdrawn_while_asked_says_there_is_none() -> None:
    talk = chat(book=AppointmentBook(mine=(VISIT,)))
    talk.send("مواعيدي")
    talk.appointments = AppointmentBook()  # staff withdrew the visit
    reply = talk.send("English")
    assert "You have no appointments to come" in reply
    assert talk.effects == []


def test_a_day_with_the_date_written_wrongly_is_refused_not_guessed() -> None:
    talk = chat()
    talk.send("٧")
    reply = talk.send("31/02/2026")  # no such date
    assert "أرسل رقم أحد الأيام التالية" in reply
    assert talk.step == ("appointments", "day")
    assert date(2026, 11, 22).isoformat() not in reply
