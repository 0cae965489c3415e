"""Questions as beneficiaries write them, with the topic of the shipped entry that answers.

``TUNING`` was written first and used to set the matcher's thresholds; ``HELD_OUT`` was
written after the thresholds were frozen and never tuned on. ``None`` marks a question
the base must not answer (out of scope). The shipped base is bot/knowledge_example.csv.
"""

from __future__ import annotations

TUNING: tuple[tuple[str, str | None], ...] = (
    # services
    ("وش تقدمون من خدمات", "services"),
    ("ايش الخدمات عندكم؟", "services"),
    ("ما هي خدمات الجمعيه", "services"),
    ("what services do you have", "services"),
    # eligibility
    ("مين يحق له يسجل", "eligibility"),
    ("هل انا مستحقه للدعم؟ انا ارمله", "eligibility"),
    ("شروط الاستحقاق ايش هي", "eligibility"),
    ("am i eligible for help", "eligibility"),
    # documents
    ("وش الاوراق اللي تبونها؟", "documents"),
    ("ايش المستندات المطلوبه", "documents"),
    ("الاوراق المطلوبه للتسجيل", "documents"),
    ("وش الورق المطلوب", "documents"),
    ("what documents are required", "documents"),
    ("wesh el awraq el matlooba", "documents"),
    # how_to_apply
    ("كيف اسجل عندكم", "how_to_apply"),
    ("ابغى اقدم طلب مساعده", "how_to_apply"),
    ("طريقةالتسجيل", "how_to_apply"),
    ("how do i apply", "how_to_apply"),
    # decision_time
    ("متى يردون على طلبي", "decision_time"),
    ("كم ياخذ وقت الطلب", "decision_time"),
    ("طلبي تاخر كثير", "decision_time"),
    ("how long does the request take", "decision_time"),
    # request_status
    ("وين وصل طلبي", "request_status"),
    ("ابي اتابع طلبي", "request_status"),
    ("track my request", "request_status"),
    # hours
    ("متى الدوام", "hours"),
    ("متى تفتحووون", "hours"),
    ("اوقات الدوام عندكم", "hours"),
    ("فاتحين بكرة السبت؟", "hours"),
    ("what time do you open", "hours"),
    ("mata el dawam", "hours"),
    # branches
    ("وين مكانكم", "branches"),
    ("وين مقر الجمعيه", "branches"),
    ("عنوانكم لو سمحت", "branches"),
    ("where is your office", "branches"),
    ("wain el far3", "branches"),
    # food_baskets
    ("متى توزيع السلال؟", "food_baskets"),
    ("متى تنزل السلة الغذائيه", "food_baskets"),
    ("ماوصلتني السله هالشهر", "food_baskets"),
    ("when is the food basket distribution", "food_baskets"),
    ("مواعيد توزيع المواد الغذائية", "food_baskets"),
    # rent
    ("تساعدون في الايجار؟", "rent"),
    ("عندي ايجار متاخر ٣ شهور", "rent"),
    ("صاحب البيت يبي يطلعنا", "rent"),
    ("can you help with rent", "rent"),
    # bills
    ("فاتورة الكهربا وصلت ٢٠٠٠ ريال تسددونها؟", "bills"),
    ("قطعو الكهرباء علينا", "bills"),
    ("electricity bill help", "bills"),
    # medical
    ("ابي مساعده في علاج امي", "medical"),
    ("تساعدون في شراء الادوية", "medical"),
    ("احتاج كرسي متحرك لابوي", "medical"),
    ("do you help with medicine", "medical"),
    # education
    ("الحقيبه المدرسيه متى", "education"),
    ("تساعدون في رسوم الجامعه؟", "education"),
    ("school uniform for my kids", "education"),
    # orphans
    ("كفالة الايتام كيف", "orphans"),
    ("عندي ايتام ابوهم متوفي هل تكفلونهم", "orphans"),
    ("orphan sponsorship", "orphans"),
    # donate
    ("ابي اتبرع كيف", "donate"),
    ("رقم حسابكم للتبرع", "donate"),
    ("how can i donate money", "donate"),
    ("abi atbara3", "donate"),
    # zakat
    ("تستقبلون الزكاه؟", "zakat"),
    ("ابي ادفع زكاة الفطر", "zakat"),
    ("where do i pay zakat", "zakat"),
    # in_kind
    ("عندي اثاث زايد ابي اتبرع فيه", "in_kind"),
    ("تقبلون ملابس مستعمله", "in_kind"),
    ("can i donate a fridge", "in_kind"),
    # volunteer
    ("ابي اتطوع معكم", "volunteer"),
    ("فيه فرص تطوع؟", "volunteer"),
    ("i want to volunteer", "volunteer"),
    # appeal
    ("رفضو طلبي ليش", "appeal"),
    ("ابي اعترض على الرفض", "appeal"),
    ("my application got rejected", "appeal"),
    # update_data
    ("غيرت رقم جوالي كيف احدثه", "update_data"),
    ("انتقلنا لبيت جديد وابي اغير العنوان", "update_data"),
    ("update my phone number", "update_data"),
    # privacy
    ("بياناتي سريه؟", "privacy"),
    ("مين يشوف معلوماتي", "privacy"),
    ("do you share my data", "privacy"),
    # renewal
    ("لازم اجدد الملف كل سنه؟", "renewal"),
    ("متى اجدد ملفي", "renewal"),
    # fees
    ("التسجيل بفلوس؟", "fees"),
    ("هل فيه رسوم للتسجيل", "fees"),
    ("is registration free", "fees"),
    # non_saudi
    ("انا مقيم ينفع اسجل", "non_saudi"),
    ("تخدمون غير السعوديين؟", "non_saudi"),
    # home_visit
    ("الباحث بيجي البيت متى", "home_visit"),
    ("هل فيه زياره منزليه", "home_visit"),
    # contact
    ("رقم تلفون الجمعيه", "contact"),
    ("كيف اكلمكم", "contact"),
    ("contact number please", "contact"),
    # complaint
    ("ابي اشتكي على موظف", "complaint"),
    ("عندي اقتراح", "complaint"),
    # seasonal
    ("سلة رمضان متى", "seasonal"),
    ("كسوة العيد للعيال", "seasonal"),
    # jobs
    ("ابي وظيفه", "jobs"),
    ("عندكم دورات تدريبيه؟", "jobs"),
    # emergency
    ("بيتنا احترق ونحتاج مساعده عاجله", "emergency"),
    # out of scope
    ("كم نتيجة مباراة الهلال والنصر", None),
    ("طريقة عمل الكبسة", None),
    ("وش الجو بكرة في الرياض", None),
    ("مين فاز بكاس العالم", None),
    ("what is the capital of france", None),
    ("recipe for chocolate cake", None),
    ("ابي رقم مطعم قريب", None),
    ("كم سعر الايفون الجديد", None),
    ("وش احسن جوال", None),
    ("متى يبدأ الدوري", None),
    ("who won the football match yesterday", None),
    ("اسعار الذهب اليوم", None),
    ("ترجم لي هذي الكلمه", None),
    ("كيف اسوي حساب سناب", None),
    ("وش افضل مسلسل", None),
    ("how to fix my car", None),
    ("ابي اعرف مواعيد الطيران", None),
    ("كم الساعة الحين في امريكا", None),
    ("tell me a joke", None),
    ("وصفة مندي دجاج", None),
    ("هل بكره اجازه رسميه", None),
    ("كيف احمل تطبيق توكلنا", None),
)

HELD_OUT: tuple[tuple[str, str | None], ...] = (
    ("السلام عليكم وش انواع المساعدات اللي تعطونها", "services"),
    ("هل تنطبق علي الشروط؟ انا مطلقه وعندي ٣ عيال", "eligibility"),
    ("وش احتاج اجيب معي من اوراق", "documents"),
    ("لازم صك البيت ولا يكفي عقد الايجار", "documents"),
    ("ابغا اسجل ك مستفيد", "how_to_apply"),
    ("كيف اقدم على الجمعيه", "how_to_apply"),
    ("صار لي شهر ما ردوا علي", "decision_time"),
    ("متى تطلع النتيجه حقت الطلب", "decision_time"),
    ("how can i know my application status", "request_status"),
    ("الدوام الساعه كم يبدا", "hours"),
    ("انتم فاتحين الحين؟", "hours"),
    ("وين موقعكم بالضبط", "branches"),
    ("عندكم فرع في الروضه؟", "branches"),
    ("السلة الغذائية متى موعدها", "food_baskets"),
    ("ما استلمت سلة هالشهر ليش", "food_baskets"),
    ("ممكن تدفعون عني الايجار", "rent"),
    ("المالك رافع علي قضيه اخلاء", "rent"),
    ("عندي فاتورة مويه متراكمة", "bills"),
    ("الكهرباء مقطوعه من اسبوع", "bills"),
    ("ولدي مريض ونحتاج دوا غالي", "medical"),
    ("هل تعطون اجهزه طبيه", "medical"),
    ("رسوم المدرسه الاهليه تساعدون فيها", "education"),
    ("اولادي ايتام ابي كفالة لهم", "orphans"),
    ("وين احول التبرع", "donate"),
    ("donation bank account number", "donate"),
    ("زكاة المال لمين اعطيها عندكم", "zakat"),
    ("عندي كنب وغساله ابي اعطيكم", "in_kind"),
    ("how to become a volunteer", "volunteer"),
    ("ودي اشتغل متطوعه", "volunteer"),
    ("انرفض طلبي وابي اعيد تقديمه", "appeal"),
    ("رقمي تغير", "update_data"),
    ("is my information confidential", "privacy"),
    ("الملف لازم يتجدد؟", "renewal"),
    ("كم رسوم التسجيل عندكم", "fees"),
    ("انا وافد اقامتي ساريه اقدر استفيد", "non_saudi"),
    ("متى يجي الباحث الاجتماعي يزورنا", "home_visit"),
    ("عطوني رقمكم", "contact"),
    ("الموظف تعامل معي بشكل سيء", "complaint"),
    ("متى توزعون كسوة العيد", "seasonal"),
    ("فيه وظايف للنساء", "jobs"),
    ("tawzee3 el salla mata", "food_baskets"),
    ("kaif asajel", "how_to_apply"),
    # out of scope
    ("مين هداف الدوري السعودي", None),
    ("كيف اطبخ مكرونه بالبشاميل", None),
    ("وش رايك في الطقس اليوم", None),
    ("how much is bitcoin today", None),
    ("ابي رقم سباك", None),
    ("كم مسافة الرياض جدة", None),
    ("متى رمضان السنه الجايه", None),
    ("best pizza in riyadh", None),
    ("وش معنى كلمه صبر", None),
    ("ابي اشتري سيارة مستعملة", None),
)
