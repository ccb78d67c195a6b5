"""The fixed words on a ticket in the five languages citizens choose at the kiosk.

Georgian is the state language and the default; a language missing here falls back to it.
"""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "ka": {
        "ahead": "თქვენს წინ: {n}",
        "wait": "სავარაუდო ლოდინი: ~{m} წთ",
        "issued": "გაცემულია: {time}",
        "scan": "მიადევნეთ თვალი რიგს ტელეფონით",
        "reprint": "დუბლიკატი",
        "bring": "მოამზადეთ:",
        "online": "შესაძლებელია ონლაინაც:",
        "priority_requested": "მოთხოვნილია პრიორიტეტი — დაადასტურეთ კონსულტანტთან",
    },
    "en": {
        "ahead": "People ahead: {n}",
        "wait": "Estimated wait: ~{m} min",
        "issued": "Issued: {time}",
        "scan": "Follow your turn on your phone",
        "reprint": "Duplicate",
        "bring": "Have these ready:",
        "online": "Also possible online:",
        "priority_requested": "Priority requested: confirm with the attendant",
    },
    "ru": {
        "ahead": "Перед вами: {n}",
        "wait": "Примерное ожидание: ~{m} мин",
        "issued": "Выдан: {time}",
        "scan": "Следите за очередью на телефоне",
        "reprint": "Дубликат",
        "bring": "Подготовьте:",
        "online": "Можно и онлайн:",
        "priority_requested": "Запрошен приоритет — подтвердите у консультанта",
    },
    "az": {
        "ahead": "Sizdən əvvəl: {n}",
        "wait": "Təxmini gözləmə: ~{m} dəq",
        "issued": "Verilib: {time}",
        "scan": "Növbənizi telefonda izləyin",
        "reprint": "Dublikat",
        "bring": "Bunları hazırlayın:",
        "online": "Onlayn da olar:",
        "priority_requested": "Prioritet istənilib — əməkdaşa təsdiq etdirin",
    },
    "hy": {
        "ahead": "Ձեզնից առաջ՝ {n}",
        "wait": "Մոտավոր սպասում՝ ~{m} րոպե",
        "issued": "Տրված է՝ {time}",
        "scan": "Հետևեք ձեր հերթին հեռախոսով",
        "reprint": "Կրկնօրինակ",
        "bring": "Պատրաստեք՝",
        "online": "Հնարավոր է նաև առցանց՝",
        "priority_requested": "Խնդրված է առաջնահերթություն․ հաստատեք աշխատակցի մոտ",
    },
}


def phrase(language: str, key: str, **values: object) -> str:
    """One ticket phrase in `language` (Georgian when the language is unknown)."""
    table = PHRASES.get(language, PHRASES["ka"])
    return table[key].format(**values)
