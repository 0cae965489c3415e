"""The second held-out set, now tuned on, with the topic of the shipped entry that answers.

Written in one sitting before the second round of matcher work and committed before
it began; its aggregate figure chose one setting of the out-of-scope rule, and in the
third round its misses were read and worked on: it is a tuning set now, and
tests/knowledge_fresh.py is the held-out one. ``None`` marks a question the base must
not answer nor offer (out of scope), some of them sharing a word with an entry ("رقم",
"موعد", "يفتح") as real ones do.
"""

from __future__ import annotations

UNSEEN: tuple[tuple[str, str | None], ...] = (
    # services
    ("ابغى اعرف وش تساعدون فيه", "services"),
    ("شنو المساعدات الي تقدمونها للاسر", "services"),
    ("what kind of help u give", "services"),
    # eligibility
    ("انا كبيره في السن وعايشه لحالي ينفع اسجل عندكم", "eligibility"),
    ("وش الشروط عشان اصير مستفيد", "eligibility"),
    ("who can get help from u", "eligibility"),
    # documents
    ("ايش الاوراق الي لازم ارفعها", "documents"),
    ("وش المطلوب مني من مستندات", "documents"),
    ("هل لازم صورة الهويه", "documents"),
    ("what papers should i bring", "documents"),
    # how_to_apply
    ("ابي اقدم على مساعده وش الطريقه", "how_to_apply"),
    ("كيف اسوي طلب جديد", "how_to_apply"),
    ("ابغي اسجل اسرتي", "how_to_apply"),
    ("كيفاسجل", "how_to_apply"),
    ("how do i register my family", "how_to_apply"),
    # decision_time
    ("كم يوم ياخذ الرد", "decision_time"),
    ("قدمت من اسبوعين وللحين مافي رد", "decision_time"),
    ("when will i get an answer", "decision_time"),
    # request_status
    ("طلبي وش صار عليه", "request_status"),
    ("ابغى استعلم عن معاملتي", "request_status"),
    ("wain wasal talabi", "request_status"),
    # hours
    ("متى تسكرون اليوم", "hours"),
    ("الدوام بالخميس؟", "hours"),
    ("ساعات العمل عندكم من كم لكم", "hours"),
    ("opening times?", "hours"),
    ("el dawam yom el sabt", "hours"),
    # branches
    ("وين الجمعيه بالضبط", "branches"),
    ("ابي لوكيشن الجمعيه", "branches"),
    ("فيه فرع قريب من حي الشاطئ", "branches"),
    ("وينمكانكم", "branches"),
    ("where r u located", "branches"),
    # food_baskets
    ("سلة الاكل متى تجي", "food_baskets"),
    ("ما جاتني السله الغذائيه هالشهر", "food_baskets"),
    ("متى يوزعون المواد التموينيه", "food_baskets"),
    ("food parcel when", "food_baskets"),
    # rent
    ("علينا ايجار ٦ شهور ومانقدر ندفع", "rent"),
    ("تساعدون بدفع الاجار", "rent"),
    ("المؤجر يبي يطردنا", "rent"),
    # bills
    ("فاتورة الموية غاليه ماقدرت اسددها", "bills"),
    ("ابي مساعده بسداد فاتوره الكهرب", "bills"),
    ("my electricity was cut", "bills"),
    # medical
    ("امي تحتاج عمليه ومانقدر على تكاليفها", "medical"),
    ("ابغى علاج لولدي", "medical"),
    ("نحتاج سماعه طبيه لبنتي", "medical"),
    # education
    ("ولدي يبي حقيبه للمدرسه", "education"),
    ("تدفعون رسوم الجامعه لبنتي", "education"),
    ("help with school fees", "education"),
    # orphans
    ("ايتام ابوهم متوفي ابي اسجلهم بالكفاله", "orphans"),
    ("وش برنامج كفالة الايتام", "orphans"),
    # donate
    ("ودي اتبرع بمبلغ بسيط", "donate"),
    ("الايبان حقكم للتبرع", "donate"),
    ("wanna donate", "donate"),
    ("kaif atabara3", "donate"),
    # zakat
    ("ابي اخرج زكاتي عن طريقكم", "zakat"),
    ("زكات الفطر تستلمونها", "zakat"),
    ("can i give my zakat to you", "zakat"),
    # in_kind
    ("عندي ثلاجه زايده تبونها", "in_kind"),
    ("ابي اتبرع بملابس عيالي القديمه", "in_kind"),
    ("donate my old sofa", "in_kind"),
    # volunteer
    ("ابغى اتطوع في الجمعيه", "volunteer"),
    ("كيف اصير متطوع", "volunteer"),
    # appeal
    ("ليش انرفض طلبي ابي اعترض", "appeal"),
    ("رفضتو طلبي وانا محتاجه", "appeal"),
    ("can i appeal the rejection", "appeal"),
    # update_data
    ("تغير عنواني", "update_data"),
    ("ابي اعدل رقم الجوال", "update_data"),
    ("زاد عدد افراد اسرتي ابي احدث البيانات", "update_data"),
    # privacy
    ("هل معلوماتي محفوظه عندكم", "privacy"),
    ("تعطون بياناتي لاحد", "privacy"),
    # renewal
    ("ملفي انتهى ابي اجدده", "renewal"),
    ("كل سنه لازم اجدد؟", "renewal"),
    # fees
    ("لازم ادفع شي عشان اسجل", "fees"),
    ("التسجيل مجاني ولا بفلوس", "fees"),
    ("does it cost anything to register", "fees"),
    # non_saudi
    ("انا مو سعوديه اقدر اسجل", "non_saudi"),
    ("الاجانب تساعدونهم", "non_saudi"),
    # home_visit
    ("بيجوننا البيت يشوفون الوضع؟", "home_visit"),
    ("الباحثه متى تزورنا", "home_visit"),
    # contact
    ("ابي رقمكم", "contact"),
    ("وش الايميل حقكم", "contact"),
    ("how can i reach you", "contact"),
    # complaint
    ("ابي اقدم شكوى", "complaint"),
    ("عندي ملاحظه على الخدمه", "complaint"),
    # seasonal
    ("فيه سلال رمضانيه هالسنه", "seasonal"),
    ("كسوة عيد للاطفال", "seasonal"),
    # jobs
    ("ابحث عن شغل تساعدوني", "jobs"),
    ("فيه دورات للنساء", "jobs"),
    # emergency
    ("بيتنا غرق بالمطر نحتاج مساعده بسرعه", "emergency"),
    ("ابوي توفى وماعندنا احد يصرف علينا", "emergency"),
    # out of scope
    ("كم سعر البنزين اليوم", None),
    ("مين بيلعب اليوم بالدوري", None),
    ("وش اسم الفلم الجديد", None),
    ("طريقة عمل الجريش", None),
    ("متى يفتح مطعم البيك", None),
    ("وش افضل تمر", None),
    ("how do i cook rice", None),
    ("what's the weather tomorrow", None),
    ("ابي رقم مستشفى الملك فهد", None),
    ("متى صلاة المغرب", None),
    ("ابي اسوي رخصة قيادة", None),
    ("وش احسن شركة اتصالات", None),
    ("كيف اتعلم انجليزي", None),
    ("translate hello to french", None),
    ("who is the president of america", None),
    ("ابي اشتري بيت", None),
    ("كم مباراة لعب رونالدو", None),
    ("وين احسن مكان للتمشيه في الرياض", None),
    ("تعرف نكته", None),
    ("كيف احجز موعد في الاحوال", None),
    ("what is 2+2", None),
    ("اغنيه حلوه", None),
)
