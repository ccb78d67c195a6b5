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

KINDS = ("near", "called", "transferred", "finished")


def render(kind: str, language: str, params: dict[str, Any]) -> tuple[str, str]:
    """The subject and text of a message of `kind` in `language` (Georgian when unknown)."""
    texts = TEXTS.get(language, TEXTS[FALLBACK])
    values = {"label": "", "counter": "", "ahead": "", "service": ""} | params
    return texts["subject"].format(**values), texts[kind].format(**values)
