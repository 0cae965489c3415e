"""The kinds of approved WhatsApp template a proactive message may go as, named once."""

from __future__ import annotations

from enum import StrEnum


class TemplateKind(StrEnum):
    """What a proactive message is (``TemplateRef.kind``, the keys of ``whatsapp.templates``).

    Outside WhatsApp's 24-hour window a message goes as the approved template of its
    kind. Every kind here is sent by something: a status notice (the staff desk) or a
    follow-up whose record names it (``bot.followups.FOLLOWUPS``); a test keeps it so.
    """

    # A request's status changed: {{1}} the reference, {{2}} the new status.
    STATUS_UPDATE = "status_update"
    INTAKE_REMINDER = "intake_reminder"
    INTAKE_EXPIRE = "intake_expire"
    CHECKIN = "checkin"
    RATING_PROMPT = "rating_prompt"
    RATING_REMINDER = "rating_reminder"
    # Staff answered feedback (``bot.feedback``): {{1}} the reference, {{2}} the answer.
    FEEDBACK_ANSWER = "feedback_answer"
    # Before an interview or a field visit: {{1}} the reference, {{2}} the date, {{3}} the time.
    APPOINTMENT_REMINDER = "appointment_reminder"
    # Staff proposed a field visit (``bot.visits``): {{1}} the reference, {{2}} the date,
    # {{3}} the time.
    VISIT_PROPOSED = "visit_proposed"
