"""The spoken announcement of a call as a WAV, for lobby displays that are only a browser.

Synthesis runs on display_client's single speech thread (espeak-ng allows one engine per
process) and each announcement is made once and cached under its cache key.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from queue_server.errors import BadRequest, RigiError, ValidationFailed

MAX_NUMBER = 9999
MAX_COUNTER = 999
LANGUAGE_CODES = ("ka", "en", "ru", "az", "hy")


class SpeechUnavailable(RigiError):
    code = "speech_unavailable"
    status = 503


class AnnouncementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    letter: str = Field(pattern=r"^[A-Z]$")
    number: int = Field(ge=1, le=MAX_NUMBER)
    counter: int = Field(ge=1, le=MAX_COUNTER)
    languages: str = Field(default="ka,en", pattern=r"^(ka|en|ru|az|hy)(,(ka|en|ru|az|hy)){0,4}$")


async def announcement_wav(request: Request, branch: str) -> Response:
    """`?letter=A&number=12&counter=5&languages=ka,en` → chime and phrases as one WAV."""
    request.app.state.rigi.catalog.branch(branch)
    try:
        query = AnnouncementQuery.model_validate(dict(request.query_params))
    except ValueError:
        raise ValidationFailed(
            "Give letter (A–Z), number, counter and optionally languages (e.g. ka,en).",
            code="bad_announcement",
        ) from None
    from display_client.announce import synthesize_announcement
    from display_client.errors import SpeechFailed

    try:
        audio = await asyncio.to_thread(
            synthesize_announcement,
            query.letter,
            query.number,
            query.counter,
            query.languages.split(","),
        )
    except (SpeechFailed, OSError) as exc:
        raise SpeechUnavailable(f"Speech is not available on this server: {exc}") from None
    except ValueError as exc:
        raise BadRequest(str(exc), code="bad_announcement") from None
    return Response(
        audio, media_type="audio/wav", headers={"Cache-Control": "public, max-age=86400"}
    )
