"""What a message says, in the ticket's language (ka en ru az hy).

Only the ticket's label, a counter number, a count of people and a service's name go into a
message: never a name. `{label}` is the printed ticket label, `{counter}` the counter number,
`{ahead}` how many people are before them, `{service}` the service's name in that language.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("ka", "en", "ru", "az", "hy")
FALLBACK = "ka"

TEXTS: dict[str, dict[str, str]] = {
    "ka": {
        "subject": "რიგი: ბილეთი {label}",
        "near": "ბილეთი {label}: თქვენი რიგი ახლოვდება, თქვენ წინ {ahead} ადამიანია. "
        "გთხოვთ, დაბრუნდეთ დარბაზში. დაგვიანებისთვის უპასუხეთ „late“.",
        "called": "ბილეთი {label}: მობრძანდით {counter} სარკმელთან.",
        "transferred": "ბილეთი {label}: თქვენ გადამისამართდით მომსახურებაზე „{service}“. "
        "დაელოდეთ გამოძახებას.",
        "finished": "ბილეთი {label}: ვიზიტი დასრულდა. გმადლობთ! შეაფასეთ მომსახურება.",
    },
    "en": {
        "subject": "Rigi: ticket {label}",
        "near": "Ticket {label}: your turn is near, {ahead} people are ahead of you. "
        "Please come back to the hall. Reply LATE if you need more time.",
        "called": "Ticket {label}: please go to counter {counter}.",
        "transferred": "Ticket {label}: you were transferred to {service}. Wait to be called.",
        "finished": "Ticket {label}: your visit is finished. Thank you! Please rate the service.",
    },
    "ru": {
        "subject": "Rigi: талон {label}",
        "near": "Талон {label}: ваша очередь близко, перед вами {ahead} чел. "
        "Пожалуйста, вернитесь в зал. Ответьте ОПАЗДЫВАЮ, если нужно больше времени.",
        "called": "Талон {label}: пройдите к окну {counter}.",
        "transferred": "Талон {label}: вас перевели на услугу «{service}». Ожидайте вызова.",
        "finished": "Талон {label}: визит завершён. Спасибо! Оцените обслуживание.",
    },
    "az": {
        "subject": "Rigi: bilet {label}",
        "near": "Bilet {label}: növbəniz yaxınlaşır, qarşınızda {ahead} nəfər var. "
        "Zəhmət olmasa zala qayıdın. Gecikirsinizsə, LATE cavabını göndərin.",
        "called": "Bilet {label}: {counter} nömrəli pəncərəyə yaxınlaşın.",
        "transferred": "Bilet {label}: siz «{service}» xidmətinə yönləndirildiniz. "
        "Çağırışı gözləyin.",
        "finished": "Bilet {label}: ziyarətiniz başa çatdı. Təşəkkür edirik! "
        "Xidməti qiymətləndirin.",
    },
    "hy": {
        "subject": "Rigi: տոմս {label}",
        "near": "Տոմս {label}: ձեր հերթը մոտենում է, ձեզնից առաջ {ahead} մարդ կա։ "
        "Խնդրում ենք վերադառնալ սրահ։ Եթե ուշանում եք, պատասխանեք LATE։",
        "called": "Տոմս {label}: մոտեցեք {counter} պատուհանին։",
        "transferred": "Տոմս {label}: դուք տեղափոխվել եք «{service}» ծառայությանը։ Սպասեք կանչին։",
        "finished": "Տոմս {label}: այցն ավարտված է։ Շնորհակալություն։ Գնահատեք սպասարկումը։",
    },
}

# The booking reminder: `{day}` is the word for tomorrow or the date (`date`), `{time}` the slot's
# local time, `{code}` the booking's short code that checks it in at the kiosk.
REMINDER = "reminder"
REMINDERS: dict[str, dict[str, str]] = {
    "ka": {
        "subject": "რიგი: ჯავშნის შეხსენება",
        "tomorrow": "ხვალ",
        "date": "{date}",
        "text": "შეხსენება: თქვენი ჯავშანი {day} {time}-ზეა: „{service}“, {branch}. "
        "კიოსკზე შეიყვანეთ კოდი {code}.",
    },
    "en": {
        "subject": "Rigi: booking reminder",
        "tomorrow": "tomorrow",
        "date": "on {date}",
        "text": "Reminder: your booking is {day} at {time}: {service}, {branch}. "
        "Check in at the kiosk with code {code}.",
    },
    "ru": {
        "subject": "Rigi: напоминание о записи",
        "tomorrow": "завтра",
        "date": "{date}",
        "text": "Напоминание: ваша запись {day} в {time}: «{service}», {branch}. "
        "Отметьтесь в киоске с кодом {code}.",
    },
    "az": {
        "subject": "Rigi: qeydiyyat xatırlatması",
        "tomorrow": "sabah",
        "date": "{date}",
        "text": "Xatırlatma: {day} saat {time} üçün qeydiyyatınız var: «{service}», {branch}. "
        "Kioskda {code} kodunu daxil edin.",
    },
    "hy": {
        "subject": "Rigi: ամրագրման հիշեցում",
        "tomorrow": "վաղը",
        "date": "{date}",
        "text": "Հիշեցում․ ձեր ամրագրումը {day} է, ժամը {time}-ին՝ «{service}», {branch}։ "
        "Կրպակում մուտքագրեք {code} կոդը։",
    },
}

# A manager's broadcast (kind `bc:<id>`; `template` in its params): fixed words, so each citizen
# reads it in their own language.
BROADCASTS: dict[str, dict[str, str]] = {
    "ka": {
        "delay": "ბილეთი {label}: ლოდინი მოსალოდნელზე გრძელია, დაახლოებით კიდევ {minutes} "
        "წუთი. ბოდიშს გიხდით.",
        "closing": "ბილეთი {label}: დღეს ფილიალი ადრე, {time}-ზე იხურება. თუ მანამდე ვერ "
        "გამოგიძახებენ, გთხოვთ, მობრძანდეთ სხვა დღეს.",
    },
    "en": {
        "delay": "Ticket {label}: the wait is longer than expected, about {minutes} more "
        "minutes. We are sorry.",
        "closing": "Ticket {label}: the branch closes early today, at {time}. If you are not "
        "called by then, please come back another day.",
    },
    "ru": {
        "delay": "Талон {label}: ожидание дольше обычного, ещё примерно {minutes} мин. "
        "Приносим извинения.",
        "closing": "Талон {label}: сегодня отделение закрывается раньше, в {time}. Если вас не "
        "вызовут до этого времени, пожалуйста, приходите в другой день.",
    },
    "az": {
        "delay": "Bilet {label}: gözləmə gözləniləndən uzundur, təxminən daha {minutes} "
        "dəqiqə. Üzr istəyirik.",
        "closing": "Bilet {label}: bu gün filial tez, saat {time} bağlanır. O vaxta qədər "
        "çağırılmasanız, zəhmət olmasa başqa gün gəlin.",
    },
    "hy": {
        "delay": "Տոմս {label}: սպասումը սովորականից երկար է, մոտ {minutes} րոպե ևս։ "
        "Ներողություն ենք խնդրում։",
        "closing": "Տոմս {label}: այսօր մասնաճյուղը շուտ է փակվում՝ ժամը {time}-ին։ Եթե մինչ "
        "այդ ձեզ չկանչեն, խնդրում ենք գալ այլ օր։",
    },
}
BROADCAST_PREFIX = "bc:"
BROADCAST = "broadcast"  # the readable kind of every `bc:<id>` message (staff's message log)
# A broadcast's title for staff (the live view's message log), from the same params.
BROADCAST_TITLES: dict[str, dict[str, str]] = {
    "ka": {"delay": "ლოდინი დაახლოებით {minutes} წუთით გახანგრძლივდა",
           "closing": "ფილიალი ადრე, {time}-ზე იხურება"},
    "en": {"delay": "The wait is about {minutes} minutes longer",
           "closing": "The branch closes early, at {time}"},
    "ru": {"delay": "Ожидание дольше примерно на {minutes} мин.",
           "closing": "Отделение закрывается раньше, в {time}"},
    "az": {"delay": "Gözləmə təxminən {minutes} dəqiqə uzundur",
           "closing": "Filial tez, saat {time} bağlanır"},
    "hy": {"delay": "Սպասումը մոտ {minutes} րոպեով երկար է",
           "closing": "Մասնաճյուղը շուտ է փակվում՝ ժամը {time}-ին"},
}  # fmt: skip

KINDS = ("near", "called", "transferred", "finished", REMINDER)


def render(kind: str, language: str, params: dict[str, Any]) -> tuple[str, str]:
    """The subject and text of a message of `kind` in `language` (Georgian when unknown)."""
    if kind.partition("+")[0] == REMINDER:  # `reminder`, or `reminder+N` after N moves
        return _reminder(language, params)
    texts = TEXTS.get(language, TEXTS[FALLBACK])
    values = {"label": "", "counter": "", "ahead": "", "service": "", "minutes": "",
              "time": ""} | params  # fmt: skip
    if kind.startswith(BROADCAST_PREFIX):
        words = BROADCASTS.get(language, BROADCASTS[FALLBACK])[params["template"]]
        return texts["subject"].format(**values), words.format(**values)
    return texts["subject"].format(**values), texts[kind].format(**values)


def readable(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """What staff read of a message's kind: `bc:<id>` is the kind `broadcast`, with the
    broadcast's id and its title in the five languages; `reminder+N` (a moved booking's) is a
    `reminder`; other kinds are as stored."""
    if not kind.startswith(BROADCAST_PREFIX):
        return {"kind": kind.partition("+")[0], "broadcast_id": None, "title": None}
    template = params.get("template", "")
    values = {"minutes": params.get("minutes", ""), "time": params.get("time", "")}
    title = {
        language: titles[template].format(**values)
        for language, titles in BROADCAST_TITLES.items()
        if template in titles
    }
    return {
        "kind": BROADCAST,
        "broadcast_id": kind.removeprefix(BROADCAST_PREFIX),
        "title": title or None,
    }


def _reminder(language: str, params: dict[str, Any]) -> tuple[str, str]:
    texts = REMINDERS.get(language, REMINDERS[FALLBACK])
    day = texts["tomorrow"] if params.get("tomorrow") else texts["date"].format(**params)
    values = {"time": "", "service": "", "branch": "", "code": ""} | params | {"day": day}
    return texts["subject"], texts["text"].format(**values)
