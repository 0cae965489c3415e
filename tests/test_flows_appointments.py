"""The appointments flow (menu option 7, "my appointments", a visit's answer) as transcripts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from transcript import Transcript

from flows import appointments
from flows.types import (
    AnswerVisit,
    AppointmentBook,
    AppointmentRules,
    AppointmentSummary,
    BookAppointment,
    CancelAppointment,
    ConversationState,
    FlowSettings,
    OpeningHours,
)

WEEK = frozenset({6, 0, 1, 2, 3})
ONE_BRANCH = AppointmentRules(hours=(OpeningHours("الرياض", WEEK, time(8), time(10)),))
TWO_BRANCHES = AppointmentRules(
    hours=(
        OpeningHours("الرياض", WEEK, time(8), time(10)),
        OpeningHours("جدة", WEEK, time(16), time(17), capacity=2),
    )
)
# Transcript's clock: Saturday 21 November 2026, 09:00 in Riyadh; Sunday is the first day.
SUNDAY_8 = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
SUNDAY_830 = datetime(2026, 11, 22, 5, 30, tzinfo=UTC)


def chat(rules: AppointmentRules = ONE_BRANCH, **settings: object) -> Transcript:
    flow_settings = FlowSettings(organization_name="جمعية البر", appointments=rules, **settings)  # type: ignore[arg-type]
    talk = Transcript(flow_settings)
    talk.send("السلام عليكم")
    return talk


def booked(talk: Transcript) -> list[BookAppointment]:
    return [e for e in talk.effects if isinstance(e, BookAppointment)]


def test_booking_an_interview_from_the_menu() -> None:
    talk = chat()
    reply = talk.send("٧")
    assert "الأيام المتاحة في فرع الرياض" in reply
    assert "١- الأحد" in reply and "هـ" in reply and "نوفمبر" in reply  # Hijri beside Gregorian
    assert "السبت" not in reply and "الجمعة" not in reply  # the Saudi week
    reply = talk.send("١")
    assert "١- ٠٨:٠٠" in reply and "٤- ٠٩:٣٠" in reply
    reply = talk.send("٢")
    assert "هل نؤكد موعد المقابلة" in reply and "٠٨:٣٠" in reply and "الرياض" in reply
    reply = talk.send("نعم")
    assert "تم حجز موعدك برقم APT-000001" in reply and "٠٨:٣٠" in reply
    assert booked(talk) == [BookAppointment("الرياض", SUNDAY_830)]
    assert talk.step == ("menu", "choose")


def test_booking_in_english_with_buttons_payloads() -> None:
    talk = chat()
    talk.send("English")
    assert "Free days at the الرياض branch" in talk.send("7")
    assert "1- 08:00" in talk.send("", payload="2026-11-22")
    reply = talk.send("", payload=SUNDAY_8.isoformat())
    assert "Shall we confirm" in reply
    assert "booked, reference APT-000001" in talk.send("", payload="yes")


def test_branch_asked_when_there_are_several_and_an_unknown_one_refused() -> None:
    talk = chat(TWO_BRANCHES)
    reply = talk.send("٧")
    assert "في أي فرع" in reply and "١- الرياض" in reply and "٢- جدة" in reply
    reply = talk.send("مكة")
    assert "لم أجد هذا الفرع" in reply
    assert talk.step == ("appointments", "branch")
    assert "الأيام المتاحة في فرع جدة" in talk.send("جدة")
    assert "١- ١٦:٠٠" in talk.send("1")
    assert booked(talk) == []


def test_a_closed_date_offers_no_slot() -> None:
    rules = AppointmentRules(hours=ONE_BRANCH.hours, closed_dates=(date(2026, 11, 22),))
    talk = chat(rules)
    reply = talk.send("٧")
    assert "٢٢ نوفمبر" not in reply and "٢٣ نوفمبر" in reply
    assert "لا توجد مواعيد متاحة في ذلك اليوم" in talk.send("2026-11-22")
    assert booked(talk) == []


def test_bad_input_is_answered_and_nothing_is_booked() -> None:
    talk = chat()
    talk.send("٧")
    assert "هذا التاريخ مضى" in talk.send("٢٠٢٦/١١/٠١")  # a past date
    assert "أرسل رقم أحد الأيام" in talk.send("غداً إن شاء الله")
    talk.send("١")
    assert "خارج أوقات المقابلات" in talk.send("١٥:٠٠")  # outside the hours
    assert "لا يوجد وقت بهذا الرقم" in talk.send("٩")  # beyond the list
    assert talk.step == ("appointments", "time")
    assert booked(talk) == []
    # A typed time that is a free slot works as well as its number.
    assert "هل نؤكد" in talk.send("٠٩:٠٠")


def test_a_number_no_longer_offered_shows_the_list_as_it_is_now() -> None:
    talk = chat()
    talk.send("٧")
    talk.send("١")
    # Someone else took 08:00 while this beneficiary was reading the list.
    talk.appointments = AppointmentBook({("الرياض", SUNDAY_8): 1})
    reply = talk.send("١")
    assert "هذا الوقت لم يعد متاحاً" in reply and "١- ٠٨:٣٠" in reply
    assert "٠٨:٠٠" not in reply
    assert booked(talk) == []


def test_the_last_place_taken_at_the_same_moment_offers_the_next_times() -> None:
    talk = chat()
    talk.send("٧")
    talk.send("١")
    talk.send("١")
    talk.gone.add(SUNDAY_8)  # the engine finds the place taken when it confirms
    reply = talk.send("نعم")
    assert "حُجز هذا الوقت قبل لحظات" in reply
    assert "١- ٠٨:٣٠" in reply and "APT-" not in reply
    assert talk.step == ("appointments", "time")
    assert "تم حجز موعدك برقم APT-000002" in (talk.send("١"), talk.send("نعم"))[1]


def test_a_second_booking_offers_to_move_the_first() -> None:
    talk = chat()
    for line in ("٧", "١", "١", "نعم"):
        talk.send(line)
    reply = talk.send("٧")
    assert "لديك موعد قادم" in reply and "APT-000001" in reply and "١- تغيير الموعد" in reply
    talk.send("١")  # move
    talk.send("٢")  # Monday
    reply = talk.send("٢")
    assert "هل نؤكد" in reply
    reply = talk.send("نعم")
    assert "تم تغيير موعدك APT-000001" in reply
    assert booked(talk)[-1].moving == "APT-000001"
    assert [a.reference for a in talk.appointments.mine] == ["APT-000001"]


def test_my_appointments_lists_and_cancels() -> None:
    talk = chat()
    assert "ليس لديك مواعيد قادمة" in talk.send("مواعيدي")
    for line in ("٧", "١", "١", "نعم"):
        talk.send(line)
    reply = talk.send("مواعيدي")
    assert "APT-000001: مقابلة مع الباحث" in reply and "٢- إلغاء الموعد" in reply
    assert "هل تريد إلغاء الموعد APT-000001" in talk.send("٢")
    assert "تم إلغاء الموعد APT-000001" in talk.send("نعم")
    assert [e for e in talk.effects if isinstance(e, CancelAppointment)] == [
        CancelAppointment("APT-000001")
    ]
    assert talk.appointments.mine == ()
    assert "my appointments" in appointments.MINE_WORDS


def test_no_hours_configured_offers_a_person() -> None:
    talk = chat(AppointmentRules())
    assert "أرسل ٤ للتحدث مع موظف" in talk.send("٧")
    assert talk.step == ("menu", "choose")


def test_a_proposed_visit_is_confirmed_or_another_time_asked() -> None:
    visit = AppointmentSummary("APT-000007", "visit", "proposed", None, SUNDAY_8, "huda")
    for answer, confirmed, told in (("١", True, "تم تأكيد الزيارة"), ("٢", False, "وقت آخر")):
        talk = chat()
        talk.appointments = AppointmentBook(mine=(visit,))
        state, message = appointments.visit_proposed(talk.state, visit, "Asia/Riyadh")
        assert "زيارة ميدانية (APT-000007)" in message.text and "huda" in message.text
        assert "الهوية الوطنية" in message.text  # what to prepare
        talk.state = state
        assert told in talk.send(answer)
        assert talk.effects[-1] == AnswerVisit("APT-000007", confirmed)


def test_a_visit_in_a_handoff_leaves_the_conversation_with_staff() -> None:
    visit = AppointmentSummary("APT-000007", "visit", "proposed", None, SUNDAY_8)
    state = ConversationState("handoff", "waiting")
    after, message = appointments.visit_proposed(state, visit, "Asia/Riyadh")
    assert after.flow == "handoff" and "الباحث الاجتماعي" in message.text
