"""What the bot says to beneficiaries, on every channel, in Arabic with the English beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flows.types import Language

# Arabic strings write the digits the reader must type (٠, ١…) in Arabic-Indic form;
# integer parameters are localised by ``text`` itself.
BENEFICIARY: Final[Mapping[str, Mapping[Language, str]]] = {
    # --- shared ---
    "error.generic": {
        "ar": "عذراً، حدث خطأ من جهتنا. أرجو إرسال رسالتك مرة أخرى.",
        "en": "Sorry, something went wrong on our side. Please send your message again.",
    },
    # The button that opens a list of choices (WhatsApp: at most 20 characters).
    "choices.list_button": {"ar": "عرض الخيارات", "en": "Show options"},
    "limit.slow_down": {
        "ar": "وصلتنا رسائلك كلها وحفظناها، شكراً لك. أرجو الانتظار دقيقة قبل إرسال المزيد، "
        "ثم المتابعة من حيث توقفت.",
        "en": "We have received and kept all your messages, thank you. Please wait a minute "
        "before sending more, then carry on where you left off.",
    },
    "common.back_hint": {
        "ar": "أرسل ٠ للعودة إلى القائمة.",
        "en": "Send 0 to go back to the menu.",
    },
    "common.staff_offer": {
        "ar": 'إن احتجت مساعدة فأرسل "{keyword}" ليتواصل معك أحد الموظفين.',
        "en": 'If you need help, send "{keyword}" and a staff member will contact you.',
    },
    "common.thanks_reply": {
        "ar": "العفو، يسعدنا خدمتك. أرسل ٠ متى احتجت القائمة.",
        "en": "You are welcome; we are glad to help. Send 0 whenever you need the menu.",
    },
    # --- main menu ---
    "menu.salam": {"ar": "وعليكم السلام ورحمة الله،", "en": "Wa alaykum as-salam."},
    "menu.welcome": {
        "ar": "أهلاً بك في {organization}. كيف نخدمك اليوم؟\n"
        "(أرسل ٠ في أي وقت للعودة إلى هذه القائمة، وEnglish للغة الإنجليزية)\n"
        "أرسل رقم الخيار:",
        "en": "Welcome to {organization}. How can we help you today?\n"
        "(Send 0 at any time to come back to this menu, and عربي for Arabic.)\n"
        "Send the number of an option:",
    },
    "menu.main": {
        "ar": "كيف نخدمك؟ أرسل رقم الخيار:\n"
        "(أرسل ٠ في أي وقت للعودة إلى هذه القائمة، وEnglish للغة الإنجليزية)",
        "en": "How can we help you? Send the number of an option:\n"
        "(Send 0 at any time to come back to this menu, and عربي for Arabic.)",
    },
    "menu.option.intake": {"ar": "طلب دعم جديد", "en": "New support request"},
    "menu.option.status": {"ar": "حالة طلبي", "en": "My request status"},
    "menu.option.rating": {"ar": "تقييم الخدمة", "en": "Rate our service"},
    "menu.option.handoff": {"ar": "التحدث مع موظف", "en": "Talk to a staff member"},
    "menu.misunderstood": {
        "ar": "عذراً، لم أفهم رسالتك. لطلب دعم أرسل ١، وللتحدث مع موظف أرسل ٤، "
        "أو اختر رقماً من ١ إلى {last}:",
        "en": "Sorry, I did not understand. To ask for support send 1, to talk to a staff "
        "member send 4, or choose a number from 1 to {last}:",
    },
    "menu.media_only": {
        "ar": "وصلتنا رسالتك، لكن لا نستطيع هنا سماع التسجيلات الصوتية أو فتح المرفقات. "
        "اكتب رسالتك نصاً، أو أرسل ٤ للتحدث مع موظف، أو اختر رقماً من ١ إلى {last}:",
        "en": "We received your message, but we cannot listen to voice notes or open "
        "attachments here. Please write it, send 4 to talk to a staff member, or choose a "
        "number from 1 to {last}:",
    },
    "menu.option.knowledge": {"ar": "استفسار", "en": "Ask a question"},
    # --- knowledge base: the beneficiary's own questions ---
    "knowledge.ask": {
        "ar": "اكتب سؤالك في رسالة واحدة، وسنجيبك إن شاء الله. أرسل ٠ للعودة إلى القائمة.",
        "en": "Write your question in one message and we will answer it. "
        "Send 0 to go back to the menu.",
    },
    "knowledge.helpful": {
        "ar": "هل أجاب هذا عن سؤالك؟",
        "en": "Did this answer your question?",
    },
    "knowledge.yes": {"ar": "نعم", "en": "Yes"},
    "knowledge.no": {"ar": "لا", "en": "No"},
    "knowledge.did_you_mean": {
        "ar": "هل تقصد أحد هذه الأسئلة؟ أرسل رقمه، أو اكتب سؤالك بكلمات أخرى:",
        "en": "Did you mean one of these questions? Send its number, or ask in other words:",
    },
    "knowledge.none_of_these": {"ar": "لا شيء مما سبق", "en": "None of these"},
    "knowledge.glad": {
        "ar": "يسعدنا ذلك. اكتب سؤالاً آخر إن شئت، أو أرسل ٠ للعودة إلى القائمة.",
        "en": "We are glad to help. Ask another question if you like, or send 0 for the menu.",
    },
    "knowledge.sorry": {
        "ar": "نعتذر، سجّلنا سؤالك ليضيف فريقنا إجابته. هل تود التحدث مع موظف؟",
        "en": "Sorry. We noted your question so that our team can add its answer. "
        "Would you like to talk to a staff member?",
    },
    "knowledge.not_found": {
        "ar": "لم نجد إجابة لسؤالك، وسجّلناه ليضيف فريقنا إجابته. هل تود التحدث مع موظف؟",
        "en": "We found no answer to your question; we noted it so that our team can add "
        "one. Would you like to talk to a staff member?",
    },
    "knowledge.offer_staff": {"ar": "التحدث مع موظف", "en": "Talk to a staff member"},
    "knowledge.offer_again": {"ar": "سؤال آخر", "en": "Ask another question"},
    "knowledge.no_phone": {
        "ar": "رقمنا لدى موظفينا (أرسل ٤ للتحدث مع موظف)",
        "en": "our number, which our staff will give you (send 4 to talk to them)",
    },
    "menu.draft_kept": {
        "ar": "حفظنا ما أدخلته من طلب الدعم، ويمكنك إكماله متى شئت باختيار {number}.",
        "en": "We saved what you entered for your support request; choose {number} to finish it.",
    },
    "menu.needs_info_kept": {
        "ar": "سؤال الباحث عن طلبك {reference} ما زال بانتظار إجابتك؛ "
        "للإجابة عنه أرسل {reference}.",
        "en": "The researcher's question about your request {reference} still awaits your "
        "answer; to answer it, send {reference}.",
    },
    "menu.rate_handoff": {
        "ar": "نرجو أن نكون قد خدمناك. لتقييم محادثتك مع الموظف أرسل ٣.",
        "en": "We hope we could help. To rate your conversation with our staff, send 3.",
    },
    # --- intake: questions ---
    "intake.intro": {
        "ar": "سنسألك بضعة أسئلة قصيرة ({total} خطوات). "
        "يمكنك إرسال ٠ في أي وقت للخروج، وسنحفظ ما أدخلته.",
        "en": "We will ask you a few short questions ({total} steps). "
        "You can send 0 at any time to leave; we will keep what you entered.",
    },
    # --- "my data": what is held about the sender (Saudi PDPL) ---
    "my_data.title": {
        "ar": "هذه البيانات المحفوظة لدينا عنك:",
        "en": "This is the data we hold about you:",
    },
    "my_data.line": {"ar": "- {label}: {value}", "en": "- {label}: {value}"},
    "my_data.request": {
        "ar": "- الطلب {reference} ({need}): {status}، قُدّم في {date}",
        "en": "- Request {reference} ({need}): {status}, filed on {date}",
    },
    "my_data.consent": {
        "ar": "- الموافقة على إشعار الخصوصية (الإصدار {version}) في {date}",
        "en": "- Consent to the privacy notice (version {version}) on {date}",
    },
    "my_data.messages": {
        "ar": "- عدد الرسائل المحفوظة في ملفك: {count}",
        "en": "- Messages kept in your file: {count}",
    },
    "my_data.rights": {
        "ar": "لتصحيح بياناتك أو طلب حذفها يمكن التحدث مع موظف: أرسل ٤. أرسل ٠ للقائمة.",
        "en": "To correct your data or ask for it to be deleted, talk to a staff member: "
        "send 4. Send 0 for the menu.",
    },
    "my_data.nothing": {
        "ar": "لا نحفظ عنك أي بيانات شخصية من هذه المحادثة. أرسل ٠ للقائمة.",
        "en": "We hold no personal data about you from this conversation. Send 0 for the menu.",
    },
    # --- privacy notice and consent (Saudi PDPL), before the first intake question ---
    "privacy.notice": {
        "ar": "قبل أن نبدأ: نجمع الاسم والهوية والجوال والمدينة ووصف الحاجة لدراسة طلبك فقط، "
        "ولا يطّلع عليها إلا المختصون في {organization}، وتُحفظ مشفّرة {kept} بعد إغلاق الطلب "
        "ثم تُحذف.",
        "en": "Before we start: we collect your name, ID, mobile, city and a description of "
        "your need only to study your request; only the staff in charge at {organization} "
        "see them, kept encrypted for {kept} after the request is closed, then deleted.",
    },
    "privacy.changed": {
        "ar": "تغيّر إشعار الخصوصية منذ بدأت طلبك، فالرجاء قراءته والموافقة عليه قبل الإقرار.",
        "en": "Our privacy notice changed since you began your request: please read it and "
        "agree before signing.",
    },
    "privacy.notice_link": {
        "ar": "النص الكامل لإشعار الخصوصية: {url}",
        "en": "The full privacy notice: {url}",
    },
    "privacy.ask": {
        "ar": "للموافقة أرسل ١ أو «نعم»، ولعدم الموافقة أرسل ٢ أو «لا».",
        "en": 'Send 1 or "yes" to agree, 2 or "no" to decline.',
    },
    "privacy.choice.agree": {"ar": "أوافق", "en": "I agree"},
    "privacy.choice.decline": {"ar": "لا أوافق", "en": "I decline"},
    "privacy.invalid": {
        "ar": "الرجاء إرسال ١ للموافقة أو ٢ لعدم الموافقة.",
        "en": "Please send 1 to agree or 2 to decline.",
    },
    "privacy.declined": {
        "ar": "لك ذلك، ولم نحفظ شيئاً من بيانات الطلب. يمكن التحدث مع موظف دون تقديم طلب: "
        "أرسل ٤، أو ٠ للقائمة.",
        "en": "Of course; nothing of the request was kept. You can talk to a staff member "
        "without filing a request: send 4, or 0 for the menu.",
    },
    "privacy.years.1": {"ar": "سنة واحدة", "en": "one year"},
    "privacy.years.2": {"ar": "سنتين", "en": "two years"},
    "privacy.years.few": {"ar": "{years} سنوات", "en": "{years} years"},
    "privacy.years.many": {"ar": "{years} سنة", "en": "{years} years"},
    "intake.counter": {"ar": "({step}/{total})", "en": "({step}/{total})"},
    "intake.ask.name": {
        "ar": "ما اسمك الرباعي؟ (الاسم الأول واسم الأب والجد والعائلة كما في الهوية)",
        "en": "What is your full four-part name "
        "(first, father's, grandfather's and family name, as on your ID)?",
    },
    # After "someone else" at "لمن هذا الطلب؟": the same two questions, about the applicant.
    "intake.ask.name_applicant": {
        "ar": "ما الاسم الرباعي لصاحب الطلب؟ (الاسم الأول واسم الأب والجد والعائلة كما في الهوية)",
        "en": "What is the applicant's full four-part name "
        "(first, father's, grandfather's and family name, as on their ID)?",
    },
    "intake.ask.national_id_applicant": {
        "ar": "ما رقم الهوية الوطنية أو الإقامة لصاحب الطلب؟ (١٠ أرقام)",
        "en": "What is the applicant's national ID or iqama number? (10 digits)",
    },
    "intake.ask.for_whom": {
        "ar": "لمن هذا الطلب؟ أرسل رقم الخيار:",
        "en": "Who is this request for? Send the number of an option:",
    },
    # A person filed for before: first name and masked ID (a WhatsApp button: 20 characters).
    "intake.choice.applicant": {"ar": "{name} {national_id}", "en": "{name} {national_id}"},
    "intake.choice.someone_else": {"ar": "شخص آخر", "en": "Someone else"},
    "intake.ask.national_id": {
        "ar": "ما رقم هويتك الوطنية أو الإقامة؟ (١٠ أرقام)",
        "en": "What is your national ID or iqama number? (10 digits)",
    },
    "intake.ask.mobile": {
        "ar": "ما رقم جوالك الذي نتواصل معك عليه؟ (يبدأ بـ٠٥)",
        "en": "Which mobile number can we reach you on? (starting with 05)",
    },
    "intake.ask.mobile_confirm": {
        "ar": 'هل نتواصل معك على هذا الرقم {phone}؟ أرسل "نعم" أو اكتب رقماً آخر.',
        "en": 'Shall we contact you on this number, {phone}? Send "yes" or write another number.',
    },
    "intake.ask.mobile_other": {
        "ar": "اكتب رقم الجوال الذي تريد أن نتواصل معك عليه (يبدأ بـ٠٥).",
        "en": "Write the mobile number you want us to reach you on (starting with 05).",
    },
    "intake.ask.city": {
        "ar": "ما مدينة السكن أو المحافظة؟",
        "en": "Which city or governorate do you live in?",
    },
    "intake.city.did_you_mean": {
        "ar": 'هل المقصود "{city}"؟ أرسل "نعم"، أو اكتب اسم المدينة مرة أخرى.',
        "en": 'Did you mean "{city}"? Send "yes", or type the name of the city again.',
    },
    "intake.city.unknown": {
        "ar": 'لم نجد "{city}" في قائمة المدن والمحافظات. إن كان الاسم صحيحاً فأرسل "نعم"، '
        "أو اكتبه مرة أخرى.",
        "en": 'We did not find "{city}" among the cities and governorates. If the name is '
        'right, send "yes"; otherwise type it again.',
    },
    "intake.ask.need": {
        "ar": "ما نوع الدعم الذي تحتاجه؟ أرسل رقم الخيار:",
        "en": "What kind of support do you need? Send the number of an option:",
    },
    "intake.ask.description": {
        "ar": "صف حالتك وما تحتاجه باختصار (من {min} إلى {max} حرف).",
        "en": "Briefly describe your situation and what you need ({min} to {max} characters).",
    },
    "intake.ask.documents": {
        "ar": "أرسل صور المستندات التي تدعم طلبك أو ملفات PDF (اختياري، حتى {max}). "
        'عند الانتهاء أرسل "تم"، وإن لم تكن لديك مستندات فأرسل "لا يوجد".',
        "en": "Send photos or PDF files of documents that support your request "
        '(optional, up to {max}). When finished send "done"; if you have none, send "none".',
    },
    "intake.ask.documents_no_media": {
        "ar": "المستندات اختيارية، وهذه القناة لا تستقبل الملفات؛ "
        'يمكنك تسليمها للباحث الاجتماعي لاحقاً. أرسل "تم" للمتابعة.',
        "en": "Documents are optional, and this channel cannot receive files; "
        'you can give them to the social researcher later. Send "done" to continue.',
    },
    "intake.document_received": {
        "ar": 'استلمنا {count} من {max} مستندات. أرسل المزيد، أو "تم" للمتابعة.',
        "en": 'Received {count} of at most {max} documents. Send more, or "done" to continue.',
    },
    "intake.ask.continue": {
        "ar": "لديك طلب دعم لم يكتمل. هل تتابع من حيث توقفت أم تبدأ من جديد؟ أرسل رقم الخيار:",
        "en": "You have an unfinished support request. "
        "Continue where you stopped, or start over? Send the number of an option:",
    },
    "intake.choice.continue": {"ar": "المتابعة من حيث توقفت", "en": "Continue where I stopped"},
    "intake.choice.restart": {"ar": "البدء من جديد", "en": "Start over"},
    # --- intake: scheduled follow-ups of a half-done request ---
    "intake.reminder": {
        "ar": "بدأتَ تقديم طلب دعم ولم يكتمل بعد، وما زلنا نحتفظ بما أدخلته. "
        "أرسل رقم الخيار، أو ٠ للعودة إلى القائمة:",
        "en": "You started a support request that is not finished yet; we have kept what "
        "you entered. Send the number of an option, or 0 to go back to the menu:",
    },
    "intake.expired": {
        "ar": "لم يكتمل طلب الدعم الذي بدأته منذ مدة، فحذفنا ما أدخلته فيه حفاظاً على بياناتك. "
        "يسعدنا أن تقدّم طلباً جديداً متى شئت: أرسل ١ لتبدأ، أو ٠ للقائمة.",
        "en": "The support request you started some time ago was not finished, so we deleted "
        "what you entered, to protect your data. You are welcome to file a new one "
        "whenever you like: send 1 to begin, or 0 for the menu.",
    },
    # --- intake: summary and declaration ---
    "intake.summary.title": {"ar": "هذه بياناتك:", "en": "Here is your data:"},
    "intake.summary.line": {"ar": "{number}- {label}: {value}", "en": "{number}- {label}: {value}"},
    "intake.summary.no_documents": {"ar": "لا يوجد", "en": "none"},
    "intake.field.name": {"ar": "الاسم", "en": "Name"},
    "intake.field.national_id": {"ar": "الهوية", "en": "ID"},
    "intake.field.mobile": {"ar": "الجوال", "en": "Mobile"},
    "intake.field.city": {"ar": "المدينة", "en": "City"},
    "intake.field.need": {"ar": "نوع الدعم", "en": "Support needed"},
    "intake.field.description": {"ar": "الوصف", "en": "Description"},
    "intake.field.documents": {"ar": "المستندات", "en": "Documents"},
    "intake.declaration": {
        "ar": "أقر بأن البيانات أعلاه صحيحة، وأتحمل المسؤولية المباشرة عنها.\n"
        'أرسل "نعم" للتوقيع، أو رقم الحقل لتعديله.',
        "en": "I declare that the data above is correct and that I am directly responsible "
        'for it.\nSend "yes" to sign, or the number of a field to correct it.',
    },
    "intake.received": {
        "ar": "تم استلام طلبك برقم {reference}.\n"
        "سيُرفع الطلب إلى لجنة البحث، ويصلك الرد بالقبول أو الاعتذار "
        "خلال مدة لا تقل عن {period} (بعد {date}).\n"
        "سنبلغك بكل تغيير دون أن تحتاج إلى السؤال. أرسل ٠ للقائمة.",
        "en": "Your request has been received with number {reference}.\n"
        "It goes to the research committee; you will get the answer (acceptance or apology) "
        "in no less than {period} (after {date}).\n"
        "We will tell you about every change without you having to ask. Send 0 for the menu.",
    },
    "intake.received_no_reference": {
        "ar": "تم استلام طلبك، وسيُرفع إلى لجنة البحث، ويصلك الرد بالقبول أو الاعتذار "
        "خلال مدة لا تقل عن {period} (بعد {date}). أرسل ٠ للقائمة.",
        "en": "Your request has been received and goes to the research committee; you will get "
        "the answer in no less than {period} (after {date}). Send 0 for the menu.",
    },
    # --- intake: reasons for refusing an answer ---
    "intake.invalid.name_letters": {
        "ar": "اكتب الاسم بالحروف فقط، دون أرقام أو رموز.",
        "en": "Please write the name in letters only, without digits or symbols.",
    },
    "intake.invalid.name_short": {
        "ar": "يُرجى إرسال الاسم الرباعي كاملاً (ثلاثة أجزاء على الأقل: الاسم واسم الأب "
        "واسم العائلة).",
        "en": "Please send your full four-part name (at least three parts: your name, your "
        "father's and your family name).",
    },
    "intake.invalid.name_long": {
        "ar": "الاسم أطول من {max} حرف. اكتبه كما في الهوية.",
        "en": "The name is longer than {max} characters. Please write it as on your ID.",
    },
    "intake.invalid.id_digits": {
        "ar": "رقم الهوية يتكون من أرقام فقط. أرسله مرة أخرى (١٠ أرقام).",
        "en": "The ID number is made of digits only. Please send it again (10 digits).",
    },
    "intake.invalid.id_length": {
        "ar": "رقم الهوية ١٠ أرقام، وعدد الأرقام المرسلة {count}. تأكد منه وأرسله مرة أخرى.",
        "en": "The ID number has 10 digits; you sent {count}. Please check it and send it again.",
    },
    "intake.invalid.id_prefix": {
        "ar": "رقم الهوية الوطنية يبدأ بـ١، ورقم الإقامة يبدأ بـ٢. تأكد من الرقم وأرسله مرة أخرى.",
        "en": "A national ID starts with 1 and an iqama with 2. "
        "Please check the number and send it again.",
    },
    "intake.invalid.id_checksum": {
        "ar": "هذا الرقم لا يبدو صحيحاً، فقد يكون أحد أرقامه مكتوباً خطأً. "
        "يُرجى نقله من البطاقة كما هو وإرساله مرة أخرى.",
        "en": "This number does not look right: one of its digits may be mistyped. "
        "Please copy it from the card and send it again.",
    },
    "intake.invalid.mobile_format": {
        "ar": "لم نتعرف على الرقم. أرسل رقم جوال سعودياً من ١٠ أرقام يبدأ بـ٠٥.",
        "en": "We could not read this number. "
        "Please send a 10-digit Saudi mobile number starting with 05.",
    },
    "intake.invalid.mobile_foreign": {
        "ar": "هذا رقم غير سعودي. أرسل رقم جوال سعودياً يبدأ بـ٠٥ من فضلك.",
        "en": "This is not a Saudi number. Please send a Saudi mobile number starting with 05.",
    },
    "intake.invalid.mobile_landline": {
        "ar": "هذا ليس رقم جوال. أرسل رقم جوال سعودياً يبدأ بـ٠٥.",
        "en": "This is not a mobile number. Please send a Saudi mobile number starting with 05.",
    },
    "intake.ask.city_typed": {
        "ar": "الموقع الذي أرسلته بعيد عن المدن المسجلة لدينا، "
        "فاكتب اسم مدينتك من فضلك، مثل: الرياض.",
        "en": "The location you sent is far from the cities we know. "
        "Please type the name of your city, for example: Riyadh.",
    },
    "intake.invalid.city": {
        "ar": "اكتب اسم مدينتك بالحروف، مثل: الرياض.",
        "en": "Please write the name of your city in letters, for example: Riyadh.",
    },
    "intake.invalid.need": {
        "ar": "أرسل رقماً من ١ إلى {count} من القائمة:",
        "en": "Please send a number from 1 to {count} from the list:",
    },
    "intake.invalid.description_short": {
        "ar": "الوصف قصير جداً. اكتب {min} أحرف على الأقل عن حالتك وما تحتاجه.",
        "en": "The description is too short. "
        "Please write at least {min} characters about your situation and need.",
    },
    "intake.invalid.description_words": {
        "ar": "يُرجى كتابة الوصف بكلمات، لا بالرموز التعبيرية أو الأرقام وحدها.",
        "en": "Please describe it in words, not only with emoji or numbers.",
    },
    "intake.invalid.description_long": {
        "ar": "الوصف طويل ({count} حرف)، والحد الأقصى {max} حرف. اختصره وأرسله مرة أخرى.",
        "en": "The description is too long ({count} characters; the limit is {max}). "
        "Please shorten it and send it again.",
    },
    "intake.invalid.document_type": {
        "ar": "لا نقبل هذا النوع من الملفات. أرسل صورة أو ملف PDF.",
        "en": "We cannot accept this type of file. Please send a photo or a PDF.",
    },
    "intake.invalid.document_limit": {
        "ar": 'وصلت إلى الحد الأقصى ({max} مستندات). أرسل "تم" للمتابعة.',
        "en": 'You reached the limit of {max} documents. Send "done" to continue.',
    },
    "intake.invalid.documents_expected": {
        "ar": 'أرسل صورة أو ملف PDF، أو "تم" للمتابعة، أو "لا يوجد" إن لم تكن لديك مستندات.',
        "en": 'Please send a photo or a PDF, "done" to continue, or "none" if you have none.',
    },
    "intake.invalid.documents_text_only": {
        "ar": 'أرسل "تم" للمتابعة، ويمكنك تسليم المستندات للباحث الاجتماعي لاحقاً.',
        "en": 'Send "done" to continue; you can give documents to the social researcher later.',
    },
    "intake.invalid.summary": {
        "ar": 'أرسل "نعم" للتوقيع، أو رقم الحقل من ١ إلى ٧ لتعديله.',
        "en": 'Send "yes" to sign, or a field number from 1 to 7 to correct it.',
    },
    "intake.invalid.for_whom": {
        "ar": "أرسل رقم صاحب الطلب من القائمة، من ١ إلى {count}:",
        "en": "Please send the number of the person the request is for, from 1 to {count}:",
    },
    "intake.invalid.continue": {
        "ar": "أرسل ١ للمتابعة من حيث توقفت، أو ٢ للبدء من جديد:",
        "en": "Send 1 to continue where you stopped, or 2 to start over:",
    },
    # --- periods (the decision window) ---
    "period.one_day": {"ar": "يوم واحد", "en": "one day"},
    "period.two_days": {"ar": "يومين", "en": "two days"},
    "period.few_days": {"ar": "{days} أيام", "en": "{days} days"},
    "period.many_days": {"ar": "{days} يوماً", "en": "{days} days"},
    "period.one_week": {"ar": "أسبوع", "en": "one week"},
    "period.two_weeks": {"ar": "أسبوعين", "en": "two weeks"},
    # --- dates: Hijri (Umm al-Qura) beside Gregorian ---
    "date.both": {
        "ar": "{hijri_day} {hijri_month} {hijri_year}هـ / {day} {month} {year}م",
        "en": "{hijri_day} {hijri_month} {hijri_year} AH / {day} {month} {year}",
    },
    "date.gregorian": {"ar": "{day} {month} {year}م", "en": "{day} {month} {year}"},
    # --- appointments with the social researcher, field visits (flows/appointments.py) ---
    "menu.option.appointment": {"ar": "موعد مع الباحث", "en": "Appointment with the researcher"},
    "apt.none_offered": {
        "ar": "لا تتوفر مواعيد للحجز عبر المحادثة حالياً. أرسل ٤ للتحدث مع موظف.",
        "en": "Appointments cannot be booked in the chat at present. "
        "Send 4 to talk to a staff member.",
    },
    "apt.ask.branch": {
        "ar": "في أي فرع تفضّل المقابلة مع الباحث الاجتماعي؟",
        "en": "At which branch would you like the interview with the social researcher?",
    },
    "apt.ask.day": {
        "ar": "الأيام المتاحة في فرع {branch}. أرسل رقم اليوم الذي يناسبك:",
        "en": "Free days at the {branch} branch. Send the number of the day that suits you:",
    },
    "apt.ask.time": {
        "ar": "الأوقات المتاحة يوم {day}. أرسل رقم الوقت الذي يناسبك:",
        "en": "Free times on {day}. Send the number of the time that suits you:",
    },
    "apt.ask.confirm": {
        "ar": "هل نؤكد موعد المقابلة؟\nالفرع: {branch}\nاليوم: {day}\nالساعة: {time}",
        "en": "Shall we confirm the interview?\nBranch: {branch}\nDay: {day}\nTime: {time}",
    },
    "apt.confirm.yes": {"ar": "نعم، أكّد", "en": "Yes, confirm"},
    "apt.confirm.no": {"ar": "لا", "en": "No"},
    "apt.booked": {
        "ar": "تم حجز موعدك برقم {reference}:\n{day}، الساعة {time}، فرع {branch}.\n"
        "أحضر معك الهوية الوطنية أو الإقامة. سنذكّرك قبل الموعد.",
        "en": "Your appointment is booked, reference {reference}:\n{day} at {time}, "
        "{branch} branch.\nPlease bring your national ID or iqama. We will remind you before it.",
    },
    "apt.moved": {
        "ar": "تم تغيير موعدك {reference} إلى:\n{day}، الساعة {time}، فرع {branch}.",
        "en": "Your appointment {reference} is moved to:\n{day} at {time}, {branch} branch.",
    },
    "apt.manage_hint": {
        "ar": 'لتغيير الموعد أو إلغائه أرسل "مواعيدي"، أو ٠ للعودة إلى القائمة.',
        "en": 'To move or cancel it send "my appointments", or 0 for the menu.',
    },
    "apt.not_booked": {
        "ar": "لم نحجز أي موعد. أرسل ٧ متى شئت لاختيار موعد آخر.",
        "en": "Nothing was booked. Send 7 whenever you like to choose another time.",
    },
    "apt.no_days": {
        "ar": "لا توجد مواعيد متاحة في فرع {branch} خلال الأيام القادمة. أرسل ٤ للتحدث مع موظف.",
        "en": "There are no free times at the {branch} branch in the coming days. "
        "Send 4 to talk to a staff member.",
    },
    "apt.day_gone": {
        "ar": "لم يعد في ذلك اليوم وقت متاح.",
        "en": "That day has no free time left.",
    },
    "apt.gone": {
        "ar": "هذا الوقت لم يعد متاحاً. هذه الأوقات المتاحة الآن:",
        "en": "That time is no longer free. These are the free times now:",
    },
    "apt.just_taken": {
        "ar": "عذراً، حُجز هذا الوقت قبل لحظات. لم نحجز لك شيئاً بعد.",
        "en": "Sorry, that time was just taken. Nothing has been booked for you yet.",
    },
    "apt.have_one": {
        "ar": "لديك موعد قادم، ويمكن أن يكون لك موعد واحد فقط في كل مرة.",
        "en": "You already have an appointment to come; you can have one at a time.",
    },
    "apt.ask.manage": {
        "ar": "{item}\nماذا تريد أن تفعل؟",
        "en": "{item}\nWhat would you like to do?",
    },
    "apt.manage.move": {"ar": "تغيير الموعد", "en": "Move it"},
    "apt.manage.cancel": {"ar": "إلغاء الموعد", "en": "Cancel it"},
    "apt.manage.keep": {"ar": "إبقاؤه كما هو", "en": "Keep it"},
    "apt.kept": {
        "ar": "بقي موعدك كما هو. أرسل ٠ للعودة إلى القائمة.",
        "en": "Your appointment stays as it is. Send 0 for the menu.",
    },
    "apt.ask.cancel": {
        "ar": "هل تريد إلغاء الموعد {reference}؟",
        "en": "Do you want to cancel appointment {reference}?",
    },
    "apt.cancelled": {
        "ar": "تم إلغاء الموعد {reference}. أرسل ٧ متى شئت لحجز موعد جديد.",
        "en": "Appointment {reference} is cancelled. Send 7 whenever you like to book a new one.",
    },
    "apt.mine.none": {
        "ar": "ليس لديك مواعيد قادمة. أرسل ٧ لحجز موعد مع الباحث الاجتماعي.",
        "en": "You have no appointments to come. Send 7 to book one with the social researcher.",
    },
    "apt.mine.header": {
        "ar": "مواعيدك القادمة. أرسل رقم الموعد لتغييره أو إلغائه:",
        "en": "Your appointments to come. Send the number of one to move or cancel it:",
    },
    "apt.item.interview": {
        "ar": "{reference}: مقابلة مع الباحث، {day}، الساعة {time}، فرع {branch} ({status})",
        "en": "{reference}: interview with the researcher, {day} at {time}, "
        "{branch} branch ({status})",
    },
    "apt.item.visit": {
        "ar": "{reference}: زيارة منزلية، {day}، الساعة {time} ({status})",
        "en": "{reference}: home visit, {day} at {time} ({status})",
    },
    "apt.status.booked": {"ar": "محجوز", "en": "booked"},
    "apt.status.proposed": {"ar": "بانتظار تأكيدك", "en": "waiting for your answer"},
    "apt.status.confirmed": {"ar": "مؤكَّد", "en": "confirmed"},
    "apt.status.change_asked": {"ar": "طلبت وقتاً آخر", "en": "you asked for another time"},
    "apt.invalid.branch": {
        "ar": "لم أجد هذا الفرع. أرسل رقم أحد الفروع التالية:",
        "en": "I could not find that branch. Send the number of one of these:",
    },
    "apt.invalid.day": {
        "ar": "أرسل رقم أحد الأيام التالية:",
        "en": "Please send the number of one of these days:",
    },
    "apt.invalid.past": {
        "ar": "هذا التاريخ مضى. اختر يوماً من الأيام المتاحة:",
        "en": "That date has passed. Please choose one of the free days:",
    },
    "apt.invalid.day_full": {
        "ar": "لا توجد مواعيد متاحة في ذلك اليوم. اختر يوماً من الأيام المتاحة:",
        "en": "There is no free time on that day. Please choose one of the free days:",
    },
    "apt.invalid.time": {
        "ar": "أرسل رقم أحد الأوقات التالية:",
        "en": "Please send the number of one of these times:",
    },
    "apt.invalid.time_number": {
        "ar": "لا يوجد وقت بهذا الرقم؛ الأرقام من ١ إلى {count}:",
        "en": "There is no time with that number; the numbers go from 1 to {count}:",
    },
    "apt.invalid.outside_hours": {
        "ar": "هذا الوقت خارج أوقات المقابلات. اختر أحد الأوقات المتاحة:",
        "en": "That time is outside the interview hours. Please choose one of the free times:",
    },
    "apt.invalid.yes_no": {
        "ar": "أرسل ١ للتأكيد أو ٢ للتراجع.",
        "en": "Send 1 to confirm or 2 to go back.",
    },
    "apt.invalid.manage": {
        "ar": "أرسل رقم أحد الخيارات التالية:",
        "en": "Please send the number of one of these options:",
    },
    "apt.invalid.pick": {
        "ar": "أرسل رقم أحد مواعيدك التالية:",
        "en": "Please send the number of one of your appointments:",
    },
    "apt.visit.proposed": {
        "ar": "نرغب في زيارتكم زيارة ميدانية ({reference}):\n{day}، بين الساعة {time} "
        "وساعتين بعدها، يزوركم {staff}.\nنرجو تجهيز الهوية الوطنية وعقد الإيجار أو صك الملكية "
        "وآخر فواتير الكهرباء. هل يناسبك هذا الموعد؟",
        "en": "We would like to visit your home ({reference}):\n{day}, within two hours from "
        "{time}; {staff} will come.\nPlease have your national ID, the lease or title deed and "
        "the latest electricity bill ready. Does this time suit you?",
    },
    "apt.reminder.interview": {
        "ar": "تذكير: موعدك {reference} مع الباحث الاجتماعي {day}، الساعة {time}، فرع {branch}. "
        'لتغييره أو إلغائه أرسل "مواعيدي".',
        "en": "Reminder: your appointment {reference} with the social researcher is on {day} "
        'at {time}, {branch} branch. To move or cancel it send "my appointments".',
    },
    "apt.reminder.visit": {
        "ar": "تذكير: الزيارة الميدانية {reference} {day}، من الساعة {time}. "
        "نرجو تجهيز الهوية الوطنية وعقد الإيجار أو صك الملكية وآخر فواتير الكهرباء.",
        "en": "Reminder: the home visit {reference} is on {day}, from {time}. Please have your "
        "national ID, the lease or title deed and the latest electricity bill ready.",
    },
    "apt.visit.researcher": {"ar": "الباحث الاجتماعي", "en": "the social researcher"},
    "apt.visit.yes": {"ar": "نعم، يناسبني", "en": "Yes, it suits me"},
    "apt.visit.other": {"ar": "أطلب وقتاً آخر", "en": "Another time please"},
    "apt.visit.confirmed": {
        "ar": "شكراً لك، تم تأكيد الزيارة {reference}. سنذكّرك قبلها.",
        "en": "Thank you, visit {reference} is confirmed. We will remind you before it.",
    },
    "apt.visit.change_asked": {
        "ar": "أبلغنا الموظف المختص، وسيتواصل معك لتحديد وقت آخر للزيارة {reference}.",
        "en": "We have told the staff member, who will contact you to arrange "
        "another time for visit {reference}.",
    },
    "apt.invalid.visit": {
        "ar": "أرسل ١ إن كان الموعد يناسبك، أو ٢ لطلب وقت آخر.",
        "en": "Send 1 if the time suits you, or 2 to ask for another time.",
    },
    # --- status ---
    "status.none": {
        "ar": "ليس لديك طلبات بعد. أرسل ١ لتقديم طلب دعم.",
        "en": "You have no requests yet. Send 1 to file one.",
    },
    "status.header": {"ar": "طلباتك:", "en": "Your requests:"},
    "status.item": {
        "ar": "{reference}: {status}\nنوع الدعم: {need}\nتاريخ التقديم: {filed}",
        "en": "{reference}: {status}\nSupport: {need}\nFiled: {filed}",
    },
    "status.item_due": {"ar": "موعد الرد: بعد {due}", "en": "Answer due: after {due}"},
    "status.more": {"ar": "طلبات أخرى أقدم: {count}", "en": "and {count} more"},
    "status.hint": {
        "ar": "لعرض طلب واحد أرسل رقمه (مثل {example})، أو ٠ للقائمة.",
        "en": "To see one request, send its number (like {example}), or 0 for the menu.",
    },
    "status.verify_ask": {
        "ar": "هذا الرقم ليس ضمن الطلبات المقدمة من هذا الحساب. لحماية البيانات أرسل آخر "
        "٤ أرقام من هوية مقدم الطلب، أو ٠ للعودة إلى القائمة.",
        "en": "This number is not among the requests filed from this account. To protect "
        "the applicant's data, send the last 4 digits of their national ID, or 0 for the menu.",
    },
    "status.verify_format": {
        "ar": "أرسل ٤ أرقام فقط: آخر أربعة أرقام من هوية مقدم الطلب.",
        "en": "Please send 4 digits only: the last four digits of the applicant's national ID.",
    },
    "status.verify_wrong": {
        "ar": "لا يمكننا عرض هذا الطلب بهذه الأرقام. بقيت لك {left} محاولة.",
        "en": "We cannot show this request with these digits. Attempts left: {left}.",
    },
    "status.verify_locked": {
        "ar": "لا يمكننا عرض هذا الطلب هنا. للاستفسار عنه أرسل «موظف» أو تواصل معنا من "
        "الرقم الذي قُدّم منه الطلب.",
        "en": 'We cannot show this request here. To ask about it, send "staff" or write '
        "to us from the number the request was filed from.",
    },
    "status.label.submitted": {
        "ar": "تم الاستلام وينتظر الدراسة",
        "en": "Received, awaiting review",
    },
    "status.label.under_review": {
        "ar": "قيد الدراسة لدى لجنة البحث",
        "en": "Under review by the research committee",
    },
    "status.label.needs_info": {
        "ar": "نحتاج منك معلومات إضافية",
        "en": "We need more information from you",
    },
    "status.label.accepted": {"ar": "تمت الموافقة", "en": "Accepted"},
    "status.label.rejected": {"ar": "نعتذر، لم تتم الموافقة", "en": "Not accepted (we apologise)"},
    "status.label.delivered": {"ar": "تم تسليم الدعم", "en": "Support delivered"},
    "status.label.closed": {"ar": "مغلق", "en": "Closed"},
    # --- rating ---
    "rating.ask": {
        "ar": "نرجو تقييم الخدمة التي قدمناها لك من ١ (غير مُرضية) إلى ٥ (مُرضية جداً).\n"
        "تقييمك حق لك، ويساعدنا على التحسين، ولا يترتب عليه أي أثر على طلباتك.",
        "en": "Please rate the service we gave you from 1 (not satisfied) to 5 (very satisfied).\n"
        "Rating is your right; it helps us improve and has no effect on your requests.",
    },
    "rating.ask_handoff": {
        "ar": "نرجو تقييم محادثتك مع موظفنا من ١ (غير مُرضية) إلى ٥ (مُرضية جداً).\n"
        "تقييمك حق لك، ويساعدنا على التحسين، ولا يترتب عليه أي أثر على طلباتك.",
        "en": "Please rate your conversation with our staff from 1 (not satisfied) "
        "to 5 (very satisfied).\n"
        "Rating is your right; it helps us improve and has no effect on your requests.",
    },
    "rating.score.1": {"ar": "غير مُرضية", "en": "Not satisfied"},
    "rating.score.2": {"ar": "مُرضية قليلاً", "en": "Slightly satisfied"},
    "rating.score.3": {"ar": "مُرضية إلى حد ما", "en": "Fairly satisfied"},
    "rating.score.4": {"ar": "مُرضية", "en": "Satisfied"},
    "rating.score.5": {"ar": "مُرضية جداً", "en": "Very satisfied"},
    "rating.invalid": {
        "ar": "أرسل رقماً من ١ إلى ٥:",
        "en": "Please send a number from 1 to 5:",
    },
    "rating.ask_comment": {
        "ar": 'شكراً لك. هل تود إضافة ملاحظة؟ اكتبها (حتى {max} حرف)، أو أرسل "تخطي".',
        "en": "Thank you. Would you like to add a comment? Write it (up to {max} characters), "
        'or send "skip".',
    },
    "rating.invalid.comment_long": {
        "ar": 'الملاحظة طويلة ({count} حرف)، والحد الأقصى {max} حرف. اختصرها، أو أرسل "تخطي".',
        "en": "The comment is too long ({count} characters; the limit is {max}). "
        'Please shorten it, or send "skip".',
    },
    "rating.invalid.comment_empty": {
        "ar": 'اكتب ملاحظتك نصاً، أو أرسل "تخطي".',
        "en": 'Please write your comment as text, or send "skip".',
    },
    "rating.low_score": {
        "ar": "نأسف لأن الخدمة لم تكن كما تستحق. سيتواصل معك أحد موظفينا ليفهم منك كيف نتحسّن.",
        "en": "We are sorry the service fell short. A staff member will contact you "
        "to understand how we can do better.",
    },
    "rating.thanks": {
        "ar": "شكراً لتقييمك، فهو يساعدنا على خدمتك بشكل أفضل. أرسل ٠ للقائمة.",
        "en": "Thank you for your rating; it helps us serve you better. Send 0 for the menu.",
    },
    "rating.prompt": {
        "ar": "نرجو أن يكون الدعم الخاص بطلبك {reference} قد وصلك على ما يرام.",
        "en": "We hope the support for your request {reference} reached you well.",
    },
    "rating.reminder": {
        "ar": "تذكير: يهمنا رأيك في خدمتنا لطلبك {reference}، ويكفي رقم واحد.",
        "en": "A reminder: your view of our service for your request {reference} matters to "
        "us; one number is enough.",
    },
    # --- handoff to a staff member ---
    "hours.am": {"ar": "ص", "en": "am"},
    "hours.pm": {"ar": "م", "en": "pm"},
    "hours.span": {"ar": "{days}، {hours}", "en": "{days}, {hours}"},
    "hours.separator": {"ar": "؛ ", "en": "; "},
    "hours.at": {"ar": "{day} {time}", "en": "{day} at {time}"},
    "handoff.closed_now": {
        "ar": "نحن الآن خارج أوقات العمل، وسيصلك الرد ابتداءً من {when}.",
        "en": "We are outside working hours now; expect an answer from {when}.",
    },
    "handoff.opened": {
        "ar": "أبلغنا أحد موظفي علاقات المستفيدين، وسيرد عليك هنا في أقرب وقت\n"
        "(أوقات العمل: {hours}). أرسل ٠ للعودة إلى القائمة.",
        "en": "We notified a beneficiary-relations staff member, who will answer you here "
        "as soon as possible\n(working hours: {hours}). Send 0 to go back to the menu.",
    },
    "handoff.misunderstood": {
        "ar": "يبدو أنني لم أفهم طلبك، لذلك سيساعدك أحد موظفينا.",
        "en": "It seems I could not understand you, so a staff member will help you.",
    },
    "handoff.urgent": {
        "ar": "نحن معك، ولست وحدك. أبلغنا فريقنا بشكل عاجل، "
        "وسيتواصل معك أحدهم هنا في أقرب وقت ممكن.",
        "en": "We are with you; you are not alone. We alerted our team urgently, "
        "and someone will contact you here as soon as possible.",
    },
    "handoff.ack": {
        "ar": "وصلت رسالتك، وسيرد عليك أحد الموظفين هنا. أرسل ٠ للعودة إلى القائمة.",
        "en": "Your message reached us; a staff member will answer you here. "
        "Send 0 to go back to the menu.",
    },
    "handoff.taken": {
        "ar": "معك الآن أحد موظفي علاقات المستفيدين، تفضّل بكتابة رسالتك هنا. "
        "أرسل ٠ للعودة إلى القائمة.",
        "en": "A beneficiary-relations staff member is with you now; please write your "
        "message here. Send 0 to go back to the menu.",
    },
    # A person's words, after who they are ({role}: one of handoff.role.*).
    "handoff.staff_says": {"ar": "👤 {role}: {message}", "en": "👤 {role}: {message}"},
    "handoff.role.agent": {"ar": "موظف علاقات المستفيدين", "en": "Beneficiary relations officer"},
    "handoff.role.researcher": {"ar": "الباحث الاجتماعي", "en": "Social researcher"},
    "handoff.role.manager": {"ar": "إدارة الجمعية", "en": "The charity's management"},
    "handoff.role.admin": {"ar": "إدارة الجمعية", "en": "The charity's management"},
    "handoff.closed": {
        "ar": "أنهى الموظف المحادثة. شكراً لتواصلك معنا.",
        "en": "Our staff member has closed the conversation. Thank you for contacting us.",
    },
    "handoff.rate_or_menu": {
        "ar": "أرسل رقم تقييمك، أو ٠ للعودة إلى القائمة دون تقييم.",
        "en": "Send your score, or 0 to go back to the menu without rating.",
    },
    # --- status notices: told without being asked, on the channel last used ---
    "notice.submitted": {
        "ar": "تحديث على طلبك {reference}: استلمنا الطلب، وهو بانتظار الدراسة.",
        "en": "Update on your request {reference}: we received it, and it is waiting "
        "to be studied.",
    },
    "notice.under_review": {
        "ar": "تحديث على طلبك {reference}: بدأت لجنة البحث دراسة الطلب، وسنبلغك بالنتيجة.",
        "en": "Update on your request {reference}: the research committee has started "
        "studying it; we will tell you the result.",
    },
    "notice.needs_info": {
        "ar": "تحديث على طلبك {reference}: نحتاج منك معلومات إضافية لإكمال دراسة الطلب.",
        "en": "Update on your request {reference}: we need more information from you "
        "to finish studying it.",
    },
    "notice.accepted": {
        "ar": "تحديث على طلبك {reference}: وافقت اللجنة على الطلب. "
        "سيتواصل معك الباحث الاجتماعي لتحديد موعد الاستلام.",
        "en": "Update on your request {reference}: the committee accepted it. "
        "The social researcher will contact you to set a date to receive the support.",
    },
    "notice.rejected": {
        "ar": "تحديث على طلبك {reference}: نعتذر إليك، فلم توافق اللجنة على الطلب.",
        "en": "Update on your request {reference}: we are sorry, the committee did not accept it.",
    },
    "notice.delivered": {
        "ar": "تحديث على طلبك {reference}: تم تسليم الدعم، شكراً لك. "
        "سنرسل لك لاحقاً سؤالاً قصيراً لتقييم الخدمة.",
        "en": "Update on your request {reference}: the support has been delivered; thank you. "
        "We will later send you a short question to rate our service.",
    },
    "notice.closed": {
        "ar": "تحديث على طلبك {reference}: أُغلق الطلب. شكراً لتواصلك معنا.",
        "en": "Update on your request {reference}: the request is now closed. "
        "Thank you for being in touch with us.",
    },
    "notice.other": {
        "ar": "تحديث على طلبك {reference}: {status}",
        "en": "Update on your request {reference}: {status}",
    },
    "notice.question": {"ar": "سؤال الباحث: {question}", "en": "The researcher asks: {question}"},
    "notice.answer_here": {
        "ar": "اكتب إجابتك هنا ردّاً على هذه الرسالة، ويمكنك إرفاق صور المستندات.",
        "en": "Reply here with your answer; you can attach photos of documents or PDFs.",
    },
    "notice.answer_here_text": {
        "ar": "اكتب إجابتك هنا ردّاً على هذه الرسالة.",
        "en": "Reply here with your answer.",
    },
    "notice.reason": {"ar": "السبب: {reason}", "en": "Reason: {reason}"},
    "notice.ask_staff": {
        "ar": "إن كان لديك استفسار فأرسل «{keyword}» ليتواصل معك أحد الموظفين.",
        "en": 'If you have a question, send "{keyword}" and a staff member will contact you.',
    },
    "notice.note": {"ar": "ملاحظة: {note}", "en": "Note: {note}"},
    "notice.checkin": {
        "ar": "طلبك {reference} ما زال قيد المتابعة لدينا، وحالته الآن: {status}. "
        "سنبلغك فور أي تغيير دون أن تحتاج للسؤال.",
        "en": "Your request {reference} is still being handled; its status now: {status}. "
        "We will tell you as soon as it changes, without you having to ask.",
    },
    # --- STOP / START: proactive messages off and on again ---
    "optout.stopped": {
        "ar": "تم إيقاف الرسائل التي نرسلها إليك من تلقاء أنفسنا، كتحديثات طلبك والتذكيرات. "
        "ستبقى محادثتك معنا كما هي: نرد على كل ما ترسله، ويمكنك السؤال عن حالة طلبك متى شئت. "
        'لاستئناف هذه الرسائل أرسل "بدء".',
        "en": "We have stopped the messages we send you on our own, such as updates on your "
        "request and reminders. Your conversation with us stays as it is: we answer "
        "everything you send, and you can ask about your request at any time. "
        "To receive these messages again, send START.",
    },
    "optout.resumed": {
        "ar": 'سنرسل إليك من جديد تحديثات طلبك والتذكيرات. لإيقافها في أي وقت أرسل "إيقاف". '
        "أرسل ٠ للقائمة.",
        "en": "We will send you updates on your request and reminders again. To stop them "
        "at any time, send STOP. Send 0 for the menu.",
    },
    # --- answering staff's question (needs_info) ---
    "needs_info.ask": {
        "ar": "أرسل إجابتك عن سؤال الباحث بخصوص طلبك {reference}، نصاً أو صورة أو ملف PDF.\n"
        "أرسل ٠ للعودة إلى القائمة، ويبقى السؤال بانتظار إجابتك.",
        "en": "Send your answer to the researcher's question about your request {reference}, "
        "as text, a photo or a PDF.\n"
        "Send 0 to go back to the menu; the question will wait for your answer.",
    },
    "needs_info.ask_text": {
        "ar": "اكتب إجابتك عن سؤال الباحث بخصوص طلبك {reference}.\n"
        "أرسل ٠ للعودة إلى القائمة، ويبقى السؤال بانتظار إجابتك.",
        "en": "Write your answer to the researcher's question about your request {reference}.\n"
        "Send 0 to go back to the menu; the question will wait for your answer.",
    },
    "needs_info.invalid.empty_text": {
        "ar": "اكتب إجابتك نصاً. أرسل ٠ للعودة إلى القائمة.",
        "en": "Please write your answer as text. Send 0 to go back to the menu.",
    },
    "needs_info.received": {
        "ar": "وصلت إجابتك وأُضيفت إلى ملف طلبك {reference}، وسيعود الطلب إلى لجنة البحث "
        "لإكمال دراسته. شكراً لك. أرسل ٠ للقائمة.",
        "en": "Your answer arrived and was added to the file of your request {reference}; "
        "the request goes back to the research committee. Thank you. Send 0 for the menu.",
    },
    "needs_info.skipped_files": {
        "ar": "لم نُرفق {count} من الملفات لأن نوعها غير مدعوم؛ نقبل الصور وملفات PDF.",
        "en": "{count} file(s) were not attached because of their type; we accept photos and PDFs.",
    },
    "needs_info.invalid.empty": {
        "ar": "اكتب إجابتك نصاً، أو أرسل صورة أو ملف PDF. أرسل ٠ للعودة إلى القائمة.",
        "en": "Please write your answer as text, or send a photo or a PDF. "
        "Send 0 to go back to the menu.",
    },
    "needs_info.invalid.file_type": {
        "ar": "لا نقبل هذا النوع من الملفات. اكتب إجابتك نصاً، أو أرسل صورة أو ملف PDF.",
        "en": "We cannot accept this type of file. "
        "Please write your answer as text, or send a photo or a PDF.",
    },
    "needs_info.invalid.too_long": {
        "ar": "الإجابة طويلة ({count} حرف)، والحد الأقصى {max} حرف. اختصرها وأرسلها مرة أخرى.",
        "en": "The answer is too long ({count} characters; the limit is {max}). "
        "Please shorten it and send it again.",
    },
    # --- the web chat page's own words (handlers/webchat_static: the page and chat.js) ---
    "webchat.title": {"ar": "تواصل معنا", "en": "Contact us"},
    "webchat.welcome": {"ar": "أرسل «السلام عليكم» أو اختر:", "en": "Send a greeting or choose:"},
    "webchat.start": {"ar": "ابدأ", "en": "Start"},
    "webchat.placeholder": {"ar": "اكتب رسالتك…", "en": "Type your message…"},
    "webchat.label": {"ar": "رسالتك", "en": "Your message"},
    "webchat.send": {"ar": "إرسال", "en": "Send"},
    "webchat.choices": {"ar": "الخيارات", "en": "Choices"},
    "webchat.offline": {"ar": "انقطع الاتصال، نحاول مجدداً…", "en": "Connection lost, retrying…"},
    "webchat.failed": {"ar": "لم تُرسل هذه الرسالة.", "en": "This message was not sent."},
    "webchat.attach": {"ar": "أرفق صورة أو ملف PDF", "en": "Attach a photo or a PDF file"},
    "webchat.too_big": {
        "ar": "لم يُرسل الملف: حجمه أكبر من ١٠ ميغابايت.",
        "en": "The file was not sent: it is larger than 10 MB.",
    },
    "webchat.file_type": {
        "ar": "لم يُرسل الملف: نستقبل الصور وملفات PDF فقط.",
        "en": "The file was not sent: we take photos and PDF files only.",
    },
    "webchat.blocked": {
        "ar": "لا يمكن فتح المحادثة داخل هذه الصفحة.",
        "en": "The chat cannot open inside this page.",
    },
    "webchat.open_elsewhere": {"ar": "افتحها في نافذة جديدة", "en": "Open it in a new window"},
    "webchat.noscript": {
        "ar": "تحتاج المحادثة إلى تفعيل JavaScript في المتصفح.",
        "en": "The chat needs JavaScript turned on in the browser.",
    },
}
