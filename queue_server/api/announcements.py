"""The spoken announcement of a call as a WAV, for lobby displays that are only a browser.

The phrasing and synthesis are rigi_protocol.speech's, the same the display client speaks with.
They run in a child process (`SpeechWorker`), which keeps each announcement's WAV in its cache
and starts espeak-ng once per phrase; the server imports neither companion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from queue_server.errors import BadRequest, RigiError, ValidationFailed
from rigi_protocol.errors import SpeechFailed
from rigi_protocol.languages import LANGUAGES
from rigi_protocol.speech.announcement import synthesize_announcement

if TYPE_CHECKING:
    from queue_server.app import Rigi


MAX_NUMBER = 9999
MAX_COUNTER = 999
_ONE_LANGUAGE = "|".join(LANGUAGES)
LANGUAGES_PATTERN = rf"^({_ONE_LANGUAGE})(,({_ONE_LANGUAGE})){{0,{len(LANGUAGES) - 1}}}$"


log = logging.getLogger(__name__)


class SpeechUnavailable(RigiError):
    code = "speech_unavailable"
    status = 503


class SpeechWorker:
    """Synthesis in a child process of its own: whatever goes wrong in it (a segfault was seen
    once, under fuzzing, when espeak-ng ran inside it as a library) costs one announcement
    (503), and the next request starts a fresh worker; the queue server goes on."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of this multi-threaded process could inherit a held lock
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        return self._pool

    async def synthesize(
        self, letter: str, number: int, counter: int, languages: list[str]
    ) -> bytes:
        pool = self._worker()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                pool, synthesize_announcement, letter, number, counter, languages
            )
        except BrokenProcessPool:
            log.error("the speech worker died; a new one starts with the next announcement")
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise SpeechUnavailable(
                "The speech engine stopped; it restarts with the next request."
            ) from None

    def worker_pids(self) -> list[int]:
        """The child's process id, once it runs (for operations, and for tests)."""
        processes: dict[int, Any] = getattr(self._pool, "_processes", None) or {}
        return list(processes)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@contextlib.asynccontextmanager
async def speech(rigi: Rigi) -> AsyncIterator[SpeechWorker]:
    """Lifespan part: the speech worker, started on the first announcement, stopped at exit."""
    worker = SpeechWorker()
    rigi.speech = worker
    try:
        yield worker
    finally:
        await asyncio.to_thread(worker.close)


class AnnouncementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    letter: str = Field(pattern=r"^[A-Z]$")
    number: int = Field(ge=1, le=MAX_NUMBER)
    counter: int = Field(ge=1, le=MAX_COUNTER)
    languages: str = Field(default="ka,en", pattern=LANGUAGES_PATTERN)


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
    worker: SpeechWorker = request.app.state.rigi.speech
    try:
        audio = await worker.synthesize(
            query.letter, query.number, query.counter, query.languages.split(",")
        )
    except (SpeechFailed, OSError) as exc:
        raise SpeechUnavailable(f"Speech is not available on this server: {exc}") from None
    except ValueError as exc:
        raise BadRequest(str(exc), code="bad_announcement") from None
    return Response(
        audio, media_type="audio/wav", headers={"Cache-Control": "public, max-age=86400"}
    )
