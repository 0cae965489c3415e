"""What the bot says to staff in the Telegram staff group and on the command line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flows.types import Language

# Arabic strings write the digits the reader must type (٠, ١…) in Arabic-Indic form;
# integer parameters are localised by ``text`` itself.
STAFF: Final[Mapping[str, Mapping[Language, str]]] = {
    # --- staff: the staff group on Telegram, the dashboard, the command line ---
    "staff.handoff.new": {
        "ar": "📩 طلب تواصل جديد\nالسبب: {reason}\n"
        "اللغة: {beneficiary_language}\nالقناة: {channel}",
        "en": "📩 New contact request\nReason: {reason}\n"
        "Language: {beneficiary_language}\nChannel: {channel}",
    },
    "staff.handoff.urgent": {
        "ar": "🚨 عاجل: طلب تواصل جديد\nالسبب: {reason}\n"
        "اللغة: {beneficiary_language}\nالقناة: {channel}",
        "en": "🚨 URGENT: new contact request\nReason: {reason}\n"
        "Language: {beneficiary_language}\nChannel: {channel}",
    },
    "staff.handoff.reminder": {
        "ar": "⏰ طلب تواصل لم يستلمه أحد بعد\nالسبب: {reason}\nالقناة: {channel}",
        "en": "⏰ A contact request nobody has taken yet\nReason: {reason}\nChannel: {channel}",
    },
    "staff.visit.scheduled": {
        "ar": "📅 اقتُرحت الزيارة الميدانية {reference} ({request}) على المستفيد: {date} الساعة "
        "{time}، {by}. سيصلكم رده هنا.",
        "en": "📅 Field visit {reference} ({request}) proposed to the beneficiary: {date} at "
        "{time}, {by}. Their answer will come here.",
    },
    "staff.visit.refused": {
        "ar": "لم تُجدوَل الزيارة: {reason}",
        "en": "The visit was not scheduled: {reason}",
    },
    # Why a visit was not scheduled or settled (``bot.visits.AppointmentError``): the
    # staff group and the dashboard in the reader's language, the command line in English.
    "staff.visit.error.bad_time": {
        "ar": "يُكتب الموعد هكذا: YYYY-MM-DD HH:MM، لا «{value}»",
        "en": 'expected "YYYY-MM-DD HH:MM", not "{value}"',
    },
    "staff.visit.error.past": {
        "ar": "تُجدوَل الزيارة لوقت قادم، وهذا الوقت قد مضى",
        "en": "a visit is scheduled for a time to come",
    },
    "staff.visit.error.no_request": {
        "ar": "لا يوجد طلب برقم {reference}",
        "en": "no request {reference}",
    },
    "staff.visit.error.no_staff": {
        "ar": "لا يوجد موظف نشط باسم {username}",
        "en": "no active staff member {username}",
    },
    "staff.visit.error.no_appointment": {
        "ar": "لا يوجد موعد برقم {reference}",
        "en": "no appointment {reference}",
    },
    "staff.visit.error.settled": {
        "ar": "الموعد {reference} مسجَّل من قبل ({status})",
        "en": "{reference} is {status} already",
    },
    "staff.visit.error.outcome": {
        "ar": "نتيجة غير معروفة «{outcome}»، والمقبول: {choices}",
        "en": 'unknown outcome "{outcome}": one of {choices}',
    },
    "staff.appointments.day": {
        "ar": "📅 مواعيد اليوم {date}:\n{lines}",
        "en": "📅 Today's appointments, {date}:\n{lines}",
    },
    "staff.visit.confirmed": {
        "ar": "✅ أكّد المستفيد الزيارة الميدانية {reference} ({request}): "
        "{date} الساعة {time}، {by}",
        "en": "✅ The beneficiary confirmed field visit {reference} ({request}): {date} at {time}, "
        "{by}",
    },
    "staff.visit.change_asked": {
        "ar": "🔁 طلب المستفيد وقتاً آخر للزيارة الميدانية {reference} ({request}) المقترحة "
        "{date} الساعة {time}. حدِّد موعداً جديداً: tawasul visits schedule {request} --at …",
        "en": "🔁 The beneficiary asked for another time for field visit {reference} ({request}) "
        "proposed on {date} at {time}. Set a new one: tawasul visits schedule {request} --at …",
    },
    "staff.decision_due": {
        "ar": "⏰ تجاوز الطلب {reference} موعد القرار ({date}) وما زال دون قرار: {status}\n"
        "المتأخرة كلها: tawasul requests list --overdue",
        "en": "⏰ {reference} is past its decision date ({date}) and still undecided: {status}\n"
        "All overdue requests: tawasul requests list --overdue",
    },
    "staff.reason.requested": {
        "ar": "طلب التحدث مع موظف من القائمة",
        "en": "Asked for a staff member from the menu",
    },
    "staff.reason.keyword": {
        "ar": "كتب كلمة يطلب بها موظفاً",
        "en": "Wrote a word asking for a staff member",
    },
    "staff.reason.misunderstood": {
        "ar": "لم يفهم البوت رسالتين متتاليتين منه",
        "en": "The bot did not understand two messages in a row",
    },
    "staff.reason.field_errors": {
        "ar": "تعثّر ثلاث مرات في أحد أسئلة طلب الدعم",
        "en": "Stuck three times on one question of the support request",
    },
    "staff.reason.crisis": {
        "ar": "كلمات تدل على أزمة: تواصلوا معه فوراً",
        "en": "Crisis words: contact them at once",
    },
    "staff.reason.low_rating": {
        "ar": "تقييم منخفض: اتصلوا به لفهم كيف نتحسن",
        "en": "Low rating: call to understand how we can improve",
    },
    # --- the case file as a spreadsheet (tawasul requests export --format csv) ---
    "staff.export.reference": {"ar": "رقم الطلب", "en": "Reference"},
    "staff.export.status": {"ar": "الحالة", "en": "Status"},
    "staff.export.channel": {"ar": "القناة", "en": "Channel"},
    "staff.export.decision_due": {"ar": "موعد القرار", "en": "Decision due"},
    "staff.export.linked_existing": {
        "ar": "مرتبط بمستفيد سابق",
        "en": "Linked to an earlier applicant",
    },
    "staff.export.masked": {"ar": "الهوية مخفية", "en": "ID masked"},
    "staff.export.yes": {"ar": "نعم", "en": "yes"},
    "staff.export.no": {"ar": "لا", "en": "no"},
    "staff.language.ar": {"ar": "العربية", "en": "Arabic"},
    "staff.language.en": {"ar": "الإنجليزية", "en": "English"},
    "staff.channel.whatsapp": {"ar": "واتساب", "en": "WhatsApp"},
    "staff.channel.sms": {"ar": "رسائل SMS", "en": "SMS"},
    "staff.channel.whatsapp_cloud": {"ar": "واتساب (Meta)", "en": "WhatsApp (Meta)"},
    "staff.channel.telegram": {"ar": "تيليجرام", "en": "Telegram"},
    "staff.channel.web": {"ar": "محادثة الموقع", "en": "Website chat"},
    "staff.channel.console": {"ar": "المحاكي النصي", "en": "Console"},
    "staff.delivery_failed": {
        "ar": "تعذّر إيصال رسائل إلى مستفيدين ({count})، وتوقفت المحاولة:",
        "en": "Messages that could not be delivered to beneficiaries ({count}); no more tries:",
    },
    "staff.delivery_failed_line": {
        "ar": "رسالة #{number} — {channel} — {reason}",
        "en": "message #{number} — {channel} — {reason}",
    },
    "staff.button.take": {"ar": "استلام", "en": "Take"},
    "staff.button.close": {"ar": "إغلاق", "en": "Close"},
    "staff.handoff.taken_by": {"ar": "استلمها {name}", "en": "Taken by {name}"},
    "staff.handoff.closed_by": {"ar": "أغلقها {name}", "en": "Closed by {name}"},
    "staff.handoff.left": {
        "ar": "غادر المستفيد المحادثة #{number} وعاد إلى القائمة",
        "en": "The beneficiary left conversation #{number} for the menu",
    },
    "staff.handoff.already_taken": {
        "ar": "استلمها {name} قبلك",
        "en": "{name} has already taken it",
    },
    "staff.callback.new": {
        "ar": "📞 تقييم منخفض ({score} من ٥) عن {context}: اتصلوا بالمستفيد لفهم كيف نتحسن.\n"
        "القناة: {channel}",
        "en": "📞 Low rating ({score} of 5) for {context}: call the beneficiary to understand "
        "how we can improve.\nChannel: {channel}",
    },
    "staff.rating_context.service": {"ar": "الخدمة", "en": "the service"},
    "staff.rating_context.handoff": {"ar": "محادثة مع موظف", "en": "a conversation with staff"},
    "staff.needs_info.answered": {
        "ar": "📎 أجاب المستفيد عن سؤال طلب {reference} (المرفقات: {count}):\n{text}",
        "en": "📎 The beneficiary answered the question on {reference} "
        "(attachments: {count}):\n{text}",
    },
    "staff.whoami": {
        "ar": "معرّف هذه المجموعة: {chat_id}\nمعرّفك في تيليجرام: {user_id}\n"
        "(ضع معرّف المجموعة في telegram.staff_chat_id، ومعرّفك في "
        "tawasul staff add --telegram-id)",
        "en": "This group's id: {chat_id}\nYour Telegram id: {user_id}\n"
        "(put the group's id in telegram.staff_chat_id, and yours in "
        "tawasul staff add --telegram-id)",
    },
    "staff.not_staff": {
        "ar": "هذا الأمر للموظفين المسجلين فقط",
        "en": "This command is for registered staff only",
    },
    "staff.status.done": {
        "ar": "تم تغيير حالة {reference} إلى {status}",
        "en": "{reference} is now {status}",
    },
    "staff.status.refused": {
        "ar": "لم تتغير الحالة: {reason}",
        "en": "Status not changed: {reason}",
    },
    "staff.note.done": {
        "ar": "أُضيفت الملاحظة إلى ملف {reference}",
        "en": "Note added to the file of {reference}",
    },
    "staff.case.not_found": {
        "ar": "لا يوجد طلب بالرقم {reference}",
        "en": "There is no request numbered {reference}",
    },
    "staff.handoffs.none": {
        "ar": "لا توجد طلبات تواصل مفتوحة",
        "en": "There are no open contact requests",
    },
    "staff.handoffs.header": {
        "ar": "طلبات التواصل المفتوحة ({count}):",
        "en": "Open contact requests ({count}):",
    },
    "staff.handoffs.line": {
        "ar": "{beneficiary} — {reason} — {owner}",
        "en": "{beneficiary} — {reason} — {owner}",
    },
    "staff.handoffs.unclaimed": {"ar": "لم يستلمها أحد", "en": "not taken yet"},
    "staff.usage": {
        "ar": "أوامر الموظفين:\n"
        "/case REF: ملف الطلب\n"
        "/status REF STATUS [ملاحظة]: تغيير حالة الطلب\n"
        "/note REF النص: إضافة ملاحظة إلى ملف الطلب\n"
        "/handoffs: طلبات التواصل المفتوحة\n"
        "/feedback REF: مقترح أو شكوى أو شكر (والرد على إعلانها يرسل الجواب للمستفيد)\n"
        "/visit REF YYYY-MM-DD HH:MM: اقتراح زيارة ميدانية على المستفيد\n"
        "الحالات: submitted, under_review, needs_info, accepted, rejected, delivered, closed\n"
        "(needs_info تحتاج ملاحظة فيها سؤال المستفيد)",
        "en": "Staff commands:\n"
        "/case REF: the request's file\n"
        "/status REF STATUS [note]: change the request's status\n"
        "/note REF text: add a note to the request's file\n"
        "/handoffs: open contact requests\n"
        "/feedback REF: a suggestion, complaint or thanks (a reply to its post answers it)\n"
        "/visit REF YYYY-MM-DD HH:MM: propose a field visit to the beneficiary\n"
        "Statuses: submitted, under_review, needs_info, accepted, rejected, delivered, closed\n"
        "(needs_info needs a note with the question for the beneficiary)",
    },
    "staff.beneficiary_says": {
        "ar": "{name_or_channel}: {text}",
        "en": "{name_or_channel}: {text}",
    },
    "staff.more_messages": {
        "ar": "… و{count} رسائل أخرى (في لوحة المتابعة)",
        "en": "… and {count} more messages (on the dashboard)",
    },
    "staff.request_line": {
        "ar": "{reference} — {status} — {need}",
        "en": "{reference} — {status} — {need}",
    },
    "staff.reason.outreach": {
        "ar": "كتب إليه موظف من ملف طلبه",
        "en": "A staff member wrote to them from their request's file",
    },
}
