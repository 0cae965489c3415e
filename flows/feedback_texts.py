"""The catalogue's sentences about feedback (suggestions, complaints, thanks), beneficiary
and staff side; ``flows.catalogue`` takes them in whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flows.types import Language

TEXTS: Final[Mapping[str, Mapping[Language, str]]] = {
    # --- the beneficiary: menu option 6 ---
    "menu.option.feedback": {"ar": "مقترح أو شكوى", "en": "Suggestion or complaint"},
    "feedback.ask.kind": {
        "ar": "يسعدنا سماع رأيك، فهو يساعدنا على تحسين خدماتنا. أرسل رقم نوع رسالتك:",
        "en": "We are glad to hear from you; it helps us improve. "
        "Send the number of the kind of message:",
    },
    "feedback.kind.suggestion": {"ar": "مقترح", "en": "A suggestion"},
    "feedback.kind.complaint": {"ar": "شكوى", "en": "A complaint"},
    "feedback.kind.thanks": {"ar": "شكر", "en": "Thanks"},
    "feedback.ask.text.suggestion": {
        "ar": "نرجو كتابة مقترحك.",
        "en": "Please write your suggestion.",
    },
    "feedback.ask.text.complaint": {
        "ar": "نرجو كتابة شكواك: ما الذي حدث، ومتى إن أمكن.",
        "en": "Please write your complaint: what happened, and when if you can.",
    },
    "feedback.ask.text.thanks": {
        "ar": "نرجو كتابة رسالة الشكر، ويمكن ذكر اسم الموظف إن رغبت.",
        "en": "Please write your thanks; you may name the staff member if you wish.",
    },
    "feedback.ask.with_files": {
        "ar": "يمكن إرفاق صورة أو ملف PDF. الحد الأقصى {max} حرف. أرسل ٠ للعودة إلى القائمة.",
        "en": "You may attach a photo or a PDF. At most {max} characters. "
        "Send 0 to go back to the menu.",
    },
    "feedback.ask.text_only": {
        "ar": "الحد الأقصى {max} حرف. أرسل ٠ للعودة إلى القائمة.",
        "en": "At most {max} characters. Send 0 to go back to the menu.",
    },
    "feedback.file_received": {
        "ar": "وصل الملف، شكراً لك. نرجو الآن كتابة رسالتك نصاً.",
        "en": "The file arrived, thank you. Now please write your message as text.",
    },
    "feedback.ask.about": {
        "ar": "هل تتعلق رسالتك بأحد طلباتك؟ أرسل رقم الخيار:",
        "en": "Is your message about one of your requests? Send the number of an option:",
    },
    "feedback.about.none": {"ar": "لا تتعلق بطلب", "en": "Not about a request"},
    "feedback.ask.contact": {
        "ar": "هل يمكن أن يتواصل معك أحد المسؤولين بخصوص هذه الشكوى؟",
        "en": "May a manager contact you about this complaint?",
    },
    "feedback.contact.yes": {"ar": "نعم، لا مانع", "en": "Yes, they may"},
    "feedback.contact.no": {"ar": "لا، الرد كتابةً يكفي", "en": "No, a written answer is enough"},
    "feedback.received.suggestion": {
        "ar": "وصل مقترحك، شكراً لك. رقمه المرجعي {reference}.\n"
        "سنرد عليك خلال {days} أيام عمل، أي في موعد أقصاه {date}.\nأرسل ٠ للقائمة.",
        "en": "Your suggestion arrived, thank you. Its reference is {reference}.\n"
        "We will answer within {days} working days, by {date}.\nSend 0 for the menu.",
    },
    "feedback.received.complaint": {
        "ar": "وصلت شكواك، ونأسف لما حدث. رقمها المرجعي {reference}.\n"
        "سيطّلع عليها المسؤولون ويردون عليك خلال {days} أيام عمل، أي في موعد أقصاه {date}.\n"
        "أرسل ٠ للقائمة.",
        "en": "Your complaint arrived, and we are sorry for what happened. "
        "Its reference is {reference}.\n"
        "Our managers will answer within {days} working days, by {date}.\nSend 0 for the menu.",
    },
    "feedback.received.thanks": {
        "ar": "وصل شكرك، وسننقله إلى فريق العمل. جزاك الله خيراً. رقمه المرجعي {reference}.\n"
        "أرسل ٠ للقائمة.",
        "en": "Your thanks arrived and we will pass it on to the team. Thank you. "
        "Its reference is {reference}.\nSend 0 for the menu.",
    },
    "feedback.invalid.kind": {
        "ar": "أرسل ١ للمقترح، أو ٢ للشكوى، أو ٣ للشكر.",
        "en": "Send 1 for a suggestion, 2 for a complaint or 3 for thanks.",
    },
    "feedback.invalid.empty": {
        "ar": "لم تصلنا كلمات. نرجو كتابة رسالتك نصاً، أو إرسال ٠ للعودة إلى القائمة.",
        "en": "No words arrived. Please write your message as text, or send 0 for the menu.",
    },
    "feedback.invalid.file_type": {
        "ar": "لا نقبل هذا النوع من الملفات؛ نقبل الصور وملفات PDF. نرجو كتابة رسالتك نصاً.",
        "en": "We cannot accept this type of file; we accept photos and PDFs. "
        "Please write your message as text.",
    },
    "feedback.invalid.too_long": {
        "ar": "الرسالة طويلة ({count} حرف)، والحد الأقصى {max} حرف. نرجو اختصارها وإرسالها "
        "مرة أخرى.",
        "en": "The message is too long ({count} characters; the limit is {max}). "
        "Please shorten it and send it again.",
    },
    "feedback.invalid.about": {
        "ar": "أرسل رقم أحد الخيارات المعروضة.",
        "en": "Please send the number of one of the options shown.",
    },
    "feedback.invalid.contact": {
        "ar": "أرسل ١ للموافقة على التواصل، أو ٢ للاكتفاء بالرد كتابةً.",
        "en": "Send 1 if a manager may contact you, or 2 for a written answer only.",
    },
    # Staff's answer, and the beneficiary's reply to it.
    "feedback.answer": {
        "ar": "رد على رسالتك {reference}:\n{answer}\n\n"
        "يمكنك الرد على هذه الرسالة، أو إرسال ٠ للقائمة.",
        "en": "An answer to your message {reference}:\n{answer}\n\n"
        "You may reply to this message, or send 0 for the menu.",
    },
    "feedback.ask.reply": {
        "ar": "أرسل ردك بخصوص رسالتك {reference}، أو ٠ للعودة إلى القائمة.",
        "en": "Send your reply about your message {reference}, or 0 for the menu.",
    },
    "feedback.reply_received": {
        "ar": "وصل ردك وأُضيف إلى رسالتك {reference}. شكراً لك. أرسل ٠ للقائمة.",
        "en": "Your reply arrived and was added to your message {reference}. Thank you. "
        "Send 0 for the menu.",
    },
    # --- staff: the staff group, the command line, the dashboard ---
    "staff.feedback.kind.suggestion": {"ar": "مقترح", "en": "Suggestion"},
    "staff.feedback.kind.complaint": {"ar": "شكوى", "en": "Complaint"},
    "staff.feedback.kind.thanks": {"ar": "شكر", "en": "Thanks"},
    "staff.feedback.status.received": {"ar": "مستلمة", "en": "Received"},
    "staff.feedback.status.in_progress": {"ar": "قيد المعالجة", "en": "In progress"},
    "staff.feedback.status.answered": {"ar": "تم الرد", "en": "Answered"},
    "staff.feedback.status.closed": {"ar": "مغلقة", "en": "Closed"},
    "staff.feedback.new": {
        "ar": "💬 {kind} جديد {reference} ({channel})، الرد قبل {due}:\n{text}\n"
        "للرد: الرد على هذه الرسالة، أو /feedback {reference}",
        "en": "💬 New {kind} {reference} ({channel}), to answer by {due}:\n{text}\n"
        "To answer: reply to this message, or /feedback {reference}",
    },
    "staff.feedback.new_complaint": {
        "ar": "📣 شكوى جديدة {reference} ({channel})، الرد قبل {due}.\n"
        "للمديرين فقط: تُقرأ في لوحة التحكم أو بالأمر /feedback {reference}",
        "en": "📣 New complaint {reference} ({channel}), to answer by {due}.\n"
        "For managers only: read it on the dashboard or with /feedback {reference}",
    },
    "staff.feedback.thanks": {
        "ar": "🌷 شكر للزميل/الزميلة {username} ({reference}):\n{text}",
        "en": "🌷 Thanks for {username} ({reference}):\n{text}",
    },
    "staff.feedback.thanks_all": {
        "ar": "🌷 شكر لفريق العمل ({reference}):\n{text}",
        "en": "🌷 Thanks for the team ({reference}):\n{text}",
    },
    "staff.feedback.overdue": {
        "ar": "⏰ إلى المديرين: {kind} {reference} تجاوز موعد الرد ({due}) وما زال: {status}\n"
        "المتأخرة كلها: tawasul feedback list --overdue",
        "en": "⏰ Managers: {kind} {reference} is past its answer date ({due}) and still "
        "{status}\nAll overdue: tawasul feedback list --overdue",
    },
    # --- staff: the dashboard's feedback page ---
    "dash.nav.feedback": {"ar": "المقترحات والشكاوى", "en": "Feedback"},
    "dash.feedback.title": {
        "ar": "المقترحات والشكاوى والشكر",
        "en": "Suggestions, complaints and thanks",
    },
    "dash.feedback.kind": {"ar": "النوع", "en": "Kind"},
    "dash.feedback.reference": {"ar": "المرجع", "en": "Reference"},
    "dash.feedback.received": {"ar": "الاستلام", "en": "Received"},
    "dash.feedback.due": {"ar": "موعد الرد", "en": "Answer due"},
    "dash.feedback.text": {"ar": "النص", "en": "Text"},
    "dash.feedback.overdue": {"ar": "متأخرة", "en": "Overdue"},
    "dash.feedback.overdue_only": {"ar": "المتأخرة فقط", "en": "Overdue only"},
    "dash.feedback.none": {"ar": "لا شيء هنا.", "en": "Nothing here."},
    "dash.feedback.bad_filter": {"ar": "عامل التصفية غير معروف.", "en": "Unknown filter."},
    "dash.feedback.forbidden": {
        "ar": "الشكاوى للمديرين والمسؤولين فقط.",
        "en": "Complaints are for managers and admins only.",
    },
    "dash.feedback.facts": {"ar": "التفاصيل", "en": "Details"},
    "dash.feedback.about": {"ar": "بخصوص الطلب", "en": "About request"},
    "dash.feedback.may_contact": {"ar": "يقبل التواصل", "en": "May be contacted"},
    "dash.feedback.named": {"ar": "الموظف المشكور", "en": "Staff thanked"},
    "dash.feedback.yes": {"ar": "نعم", "en": "Yes"},
    "dash.feedback.no": {"ar": "لا", "en": "No"},
    "dash.feedback.answer": {"ar": "الرد على المستفيد", "en": "Answer the beneficiary"},
    "dash.feedback.answer_hint": {
        "ar": "يصل الرد فوراً على قناة المستفيد، ويمكنه الرد عليه.",
        "en": "The answer reaches the beneficiary at once on their channel; they may reply.",
    },
    "dash.feedback.send": {"ar": "إرسال الرد", "en": "Send the answer"},
    "dash.feedback.done.answer": {"ar": "أُرسل الرد.", "en": "The answer was sent."},
    "dash.feedback.done.status": {"ar": "تغيرت الحالة.", "en": "The status changed."},
    "dash.feedback.event.received": {"ar": "الاستلام", "en": "Received"},
    "dash.feedback.event.status": {"ar": "تغيير الحالة", "en": "Status change"},
    "dash.feedback.event.answer": {"ar": "رد الجمعية", "en": "Answer"},
    "dash.feedback.event.reply": {"ar": "رد المستفيد", "en": "Beneficiary's reply"},
    "staff.feedback.answered": {
        "ar": "✅ أُرسل الرد على {reference} إلى المستفيد.",
        "en": "✅ The answer to {reference} was sent to the beneficiary.",
    },
    "staff.feedback.due": {"ar": "موعد الرد: {due}", "en": "Answer due: {due}"},
    "staff.feedback.complaint_hidden": {
        "ar": "نص الشكوى في لوحة التحكم (للمديرين فقط)؛ للرد: الرد على إعلانها هنا.",
        "en": "The complaint's words are on the dashboard (managers only); to answer, reply "
        "to its post here.",
    },
    "staff.feedback.forbidden": {
        "ar": "⛔ الشكاوى للمديرين والمسؤولين فقط.",
        "en": "⛔ Complaints are for managers and admins only.",
    },
    "staff.feedback.refused": {"ar": "لم يتم ذلك: {reason}", "en": "Not done: {reason}"},
    "dash.feedback.report.title": {
        "ar": "المقترحات والشكاوى والشكر",
        "en": "Suggestions, complaints and thanks",
    },
    "dash.feedback.report.summary": {
        "ar": "وصلت {count} رسالة، رُدّ على {answered} منها، والمتأخرة الآن {overdue}.",
        "en": "{count} received, {answered} answered, {overdue} overdue now.",
    },
    "dash.feedback.report.median": {
        "ar": "الوسيط حتى الرد: {hours} ساعة.",
        "en": "Median time to answer: {hours} hours.",
    },
    "dash.feedback.report.export": {"ar": "تصدير CSV", "en": "Export CSV"},
    "dash.feedback.report.by_month": {"ar": "حسب الشهر", "en": "By month"},
    "dash.feedback.report.by_kind": {"ar": "حسب النوع", "en": "By kind"},
    "dash.feedback.report.by_need": {"ar": "حسب نوع الدعم", "en": "By kind of support"},
    "dash.feedback.report.by_channel": {"ar": "حسب القناة", "en": "By channel"},
    "dash.feedback.report.answered": {"ar": "رُدّ عليها", "en": "Answered"},
    "dash.feedback.report.median_hours": {
        "ar": "الوسيط حتى الرد (ساعة)",
        "en": "Median hours to answer",
    },
    "dash.feedback.on_case": {
        "ar": "مقترحات وشكاوى عن هذا الطلب",
        "en": "Feedback about this request",
    },
    "dash.feedback.late": {
        "ar": "⏰ {count} تجاوزت موعد الرد دون جواب: عرضها",
        "en": "⏰ {count} past their answer date without an answer: show them",
    },
    "staff.feedback.replied": {
        "ar": "↩️ ردّ المستفيد على جواب {reference}:\n{text}\nللرد: الرد على هذه الرسالة.",
        "en": "↩️ The beneficiary replied to the answer to {reference}:\n{text}\n"
        "To answer: reply to this message.",
    },
    "staff.feedback.replied_complaint": {
        "ar": "↩️ ردّ المستفيد على جواب الشكوى {reference}؛ يُقرأ في لوحة التحكم (للمديرين).",
        "en": "↩️ The beneficiary replied to the answer to complaint {reference}; read it on "
        "the dashboard (managers).",
    },
}
