"""The one-time code's message in the booking's language."""

from __future__ import annotations

CODE_TEXT = {
    "ka": "Rigi: ჯავშნის დადასტურების კოდი {code}. მოქმედებს {minutes} წუთი.",
    "en": "Rigi: your booking code is {code}. It is valid for {minutes} minutes.",
    "ru": "Rigi: код подтверждения записи {code}. Действует {minutes} мин.",
    "az": "Rigi: rezervasiya təsdiq kodu {code}. {minutes} dəqiqə etibarlıdır.",
    "hy": "Rigi: ամրագրման հաստատման կոդը՝ {code}։ Գործում է {minutes} րոպե։",
}
CODE_SUBJECT = {
    "ka": "ჯავშნის კოდი",
    "en": "Your booking code",
    "ru": "Код записи",
    "az": "Rezervasiya kodu",
    "hy": "Ամրագրման կոդ",
}


def code_message(language: str, code: str, minutes: int) -> tuple[str, str]:
    """(subject, text) of the code message."""
    text = CODE_TEXT.get(language, CODE_TEXT["en"]).format(code=code, minutes=minutes)
    return CODE_SUBJECT.get(language, CODE_SUBJECT["en"]), text
