"""The privacy notice before an intake (Saudi PDPL), as conversations: agreeing keeps the
consent with the notice's version, declining keeps nothing and offers a person, and a new
notice version is asked again."""

import dataclasses

from transcript import INTAKE_AR, Transcript, play

from flows.types import BUILT_IN_NOTICE, FlowSettings, OpenHandoff

SETTINGS = FlowSettings(
    organization_name="جمعية البر",
    notice_version="2026-11",
    notice_url="https://example.org/privacy",
)
AFTER_CONSENT = INTAKE_AR[3:]  # the name, the ID … the signature


def test_the_notice_comes_before_the_first_question_and_the_consent_is_filed() -> None:
    chat = Transcript(SETTINGS, sender_phone="+966551234567")
    play(
        chat,
        [
            ("السلام عليكم", ["١- طلب دعم جديد"]),
            (
                "١",
                [
                    "لدراسة طلبك فقط",
                    "جمعية البر",
                    "٥ سنوات بعد إغلاق الطلب",
                    "https://example.org/privacy",
                    "١- أوافق",
                    "٢- لا أوافق",
                ],
            ),
        ],
    )
    assert "(١/٨)" not in chat.send("ما هذا")  # neither yes nor no: asked again
    assert chat.step == ("intake", "consent")
    assert "(١/٨)" in chat.send("نعم")
    for line in AFTER_CONSENT:
        chat.send(line)
    (saved,) = chat.saved
    assert saved.consent == {
        "version": "2026-11",
        "at": "2026-11-21T06:00:00+00:00",
        "channel": "whatsapp",
        "message_id": "m4",  # the consent's own message, not the signature's
    }


def test_a_button_press_agrees_in_english() -> None:
    chat = Transcript(SETTINGS)
    chat.send("English")
    reply = chat.send("1")
    assert "only to study your request" in reply and "5 years" in reply
    assert "(1/8)" in chat.send(payload="1")


def test_declining_keeps_nothing_and_offers_a_person() -> None:
    chat = Transcript(SETTINGS)
    chat.send("السلام عليكم")
    chat.send("١")
    reply = chat.send("لا")
    assert "لم نحفظ شيئاً" in reply and "أرسل ٤" in reply
    assert chat.step == ("menu", "choose")
    assert "intake_draft" not in chat.state.data and "consent" not in chat.state.data
    chat.send("٤")
    assert chat.handoffs == [OpenHandoff("requested")]
    assert chat.saved == []


def test_agreed_once_not_asked_again_until_the_notice_changes() -> None:
    chat = Transcript(SETTINGS)
    for line in (INTAKE_AR[0], INTAKE_AR[1], "نعم", *AFTER_CONSENT):
        chat.send(line)
    second = chat.send("١")  # the second request: straight to its first question
    assert "لمن هذا الطلب؟" in second and "أوافق" not in second
    chat.send("٠")
    chat.send("١")
    chat.send("٢")  # start over
    chat.settings = dataclasses.replace(SETTINGS, notice_version="2027-01")
    chat.state = dataclasses.replace(chat.state, data={**chat.state.data, "intake_draft": None})
    chat.send("٠")
    reply = chat.send("١")
    assert "١- أوافق" in reply and "لمن هذا الطلب؟" not in reply
    assert "لمن هذا الطلب؟" in chat.send("١")  # agreed: then the first question
    assert chat.state.data["consent"]["version"] == "2027-01"


def test_the_built_in_notice_is_asked_by_default() -> None:
    chat = Transcript(FlowSettings(organization_name="جمعية البر"))
    chat.send("السلام عليكم")
    reply = chat.send("١")
    assert "لدراسة طلبك فقط" in reply and "جمعية البر" in reply and "٥ سنوات" in reply
    assert "http" not in reply  # no link unless the charity gives one
    assert chat.step == ("intake", "consent")
    assert "(١/٨)" in chat.send("١")
    assert chat.state.data["consent"]["version"] == BUILT_IN_NOTICE


def test_an_explicit_empty_version_asks_none() -> None:
    chat = Transcript(FlowSettings(notice_version=""))
    chat.send("السلام عليكم")
    assert "(١/٨)" in chat.send("١")
    assert "consent" not in chat.state.data


# A draft begun with no notice configured: the name and ID given, then the menu.
BEFORE_THE_NOTICE = dataclasses.replace(SETTINGS, notice_version="")


def draft_begun_before_the_notice() -> Transcript:
    chat = Transcript(BEFORE_THE_NOTICE)
    for line in ("السلام عليكم", "١", "محمد أحمد علي الزهراني", "١٠٠٠٠٠٠٠٠٨", "٠"):
        chat.send(line)
    chat.settings = SETTINGS  # the charity turns the notice on
    assert "لديك طلب دعم لم يكتمل" in chat.send("١")
    return chat


def test_continuing_a_draft_begun_before_the_notice_asks_it_then_resumes() -> None:
    chat = draft_begun_before_the_notice()
    reply = chat.send("١")  # continue
    assert "لدراسة طلبك فقط" in reply and "١- أوافق" in reply and "(٣/٨)" not in reply
    assert chat.step == ("intake", "consent")
    assert chat.state.data["intake_draft"]["national_id"] == "1000000008"  # kept meanwhile
    assert "(٣/٨)" in chat.send("نعم")  # where it stopped: the mobile
    for line in ("٠٥٥١٢٣٤٥٦٧", "جده", "١", "نحتاج سلة غذائية للأسرة المكونة من خمسة أفراد"):
        chat.send(line)
    chat.send("تم")
    assert "REQ-000001" in chat.send("نعم")
    (saved,) = chat.saved
    assert saved.answers["name"] == "محمد أحمد علي الزهراني"
    assert saved.consent is not None and saved.consent["version"] == "2026-11"
    assert saved.consent["message_id"] == "m8"  # the "yes" after "continue"


def test_declining_on_continue_drops_the_draft_and_offers_a_person() -> None:
    chat = draft_begun_before_the_notice()
    chat.send("متابعة")
    reply = chat.send("لا")
    assert "لم نحفظ شيئاً" in reply and "أرسل ٤" in reply
    assert chat.step == ("menu", "choose")
    assert "intake_draft" not in chat.state.data and "consent" not in chat.state.data
    assert "١- أوافق" in chat.send("١")  # a new intake, not "continue or start over"
    assert chat.state.data["intake_draft"] == {}
    assert chat.saved == []


def test_a_new_notice_version_is_asked_on_continue_and_after_a_long_silence() -> None:
    chat = Transcript(SETTINGS)
    for line in ("السلام عليكم", "١", "نعم", "محمد أحمد علي الزهراني"):
        chat.send(line)
    chat.settings = dataclasses.replace(SETTINGS, notice_version="2027-01")
    chat.advance(hours=13)  # back after a long silence: "continue or start over"
    assert "لديك طلب دعم لم يكتمل" in chat.send("١٠٠٠٠٠٠٠٠٨")
    assert "١- أوافق" in chat.send("١")
    assert "(٢/٨)" in chat.send(payload="1")  # the ID: the silence's message was not kept
    assert chat.state.data["consent"]["version"] == "2027-01"


def test_continuing_with_the_notice_agreed_is_not_asked_again() -> None:
    chat = Transcript(SETTINGS)
    for line in ("السلام عليكم", "١", "نعم", "محمد أحمد علي الزهراني", "٠", "١"):
        chat.send(line)
    reply = chat.send("١")
    assert "(٢/٨)" in reply and "أوافق" not in reply


def at_the_signature_after_the_notice_changed() -> Transcript:
    chat = Transcript(SETTINGS)
    for line in (INTAKE_AR[0], INTAKE_AR[1], "نعم", *AFTER_CONSENT[:-1]):
        chat.send(line)
    assert chat.step == ("intake", "summary")
    chat.settings = dataclasses.replace(SETTINGS, notice_version="2027-01")
    reply = chat.send(AFTER_CONSENT[-1])  # "نعم": the signature
    assert "تغيّر إشعار الخصوصية" in reply and "١- أوافق" in reply
    assert chat.step == ("intake", "consent") and chat.saved == []
    assert chat.state.data["intake_draft"]["national_id"] == "1000000008"  # kept meanwhile
    return chat


def test_a_notice_changed_before_the_signature_is_agreed_to_before_the_request_is_filed() -> None:
    chat = at_the_signature_after_the_notice_changed()
    summary = chat.send("١")  # agreed: the summary again, to sign
    assert chat.step == ("intake", "summary") and "محمد أحمد علي الزهراني" in summary
    assert "REQ-000001" in chat.send("نعم")
    (saved,) = chat.saved
    assert saved.consent is not None and saved.consent["version"] == "2027-01"


def test_declining_a_notice_changed_before_the_signature_files_nothing() -> None:
    chat = at_the_signature_after_the_notice_changed()
    assert "لم نحفظ شيئاً" in chat.send("٢")
    assert chat.step == ("menu", "choose") and "intake_draft" not in chat.state.data
    assert chat.saved == []
