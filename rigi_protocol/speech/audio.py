"""WAV helpers: the chime, concatenation, and the checks the tests and the server rely on.

Everything is 16-bit mono at 22,050 Hz, the format `espeak-ng -w` writes,
so announcement parts join by copying frames without resampling.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 22_050
SAMPLE_WIDTH = 2
CHANNELS = 1
SHIPPED_CHIME = Path(__file__).resolve().parent / "chime.wav"

# A two-note "ding-dong" (E5 then C5), soft attack, exponential decay: heard over lobby noise
# without startling anyone.
CHIME_NOTES_HZ = (659.25, 523.25)
CHIME_NOTE_S = 0.45
CHIME_ATTACK_S = 0.01
CHIME_DECAY_PER_S = 5.0
CHIME_PEAK = 0.5
SILENCE_THRESHOLD = 500  # of 32767: quieter than this counts as silence


@dataclass(frozen=True)
class WavInfo:
    frames: int
    rate: int
    width: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def chime_frames(rate: int = SAMPLE_RATE) -> bytes:
    """The chime's 16-bit samples, computed rather than shipped as an opaque blob."""
    samples: list[int] = []
    note_frames = int(CHIME_NOTE_S * rate)
    attack_frames = max(1, int(CHIME_ATTACK_S * rate))
    for frequency in CHIME_NOTES_HZ:
        for i in range(note_frames):
            t = i / rate
            envelope = min(1.0, i / attack_frames) * math.exp(-CHIME_DECAY_PER_S * t)
            # A quiet octave overtone makes it sound like a bell rather than a beep.
            tone = math.sin(2 * math.pi * frequency * t) + 0.3 * math.sin(
                4 * math.pi * frequency * t
            )
            samples.append(int(32767 * CHIME_PEAK * envelope * tone / 1.3))
    return struct.pack(f"<{len(samples)}h", *samples)


def write_wav(path: Path, frames: bytes, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(CHANNELS)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def write_chime(path: Path) -> Path:
    """(Re)generate the chime: `python -m rigi_protocol.speech.audio` rewrites the shipped one."""
    return write_wav(path, chime_frames())


def default_chime() -> Path:
    """The shipped chime, or a freshly generated one when the package was installed without it."""
    if SHIPPED_CHIME.exists():
        return SHIPPED_CHIME
    generated = Path(tempfile.gettempdir()) / "rigi-display-chime.wav"
    if not generated.exists():
        write_chime(generated)
    return generated


def read_wav(source: Path | bytes) -> tuple[WavInfo, bytes]:
    handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    with handle, wave.open(handle, "rb") as wav:
        info = WavInfo(wav.getnframes(), wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
        return info, wav.readframes(info.frames)


def silence(seconds: float, rate: int = SAMPLE_RATE) -> bytes:
    return b"\x00\x00" * int(seconds * rate)


def concatenate(parts: Iterable[Path | bytes], gap_s: float = 0.0) -> bytes:
    """One WAV of the parts in order with `gap_s` of silence between them; all must share the
    sample format (they do: espeak-ng and the chime are 22,050 Hz 16-bit mono)."""
    frames: list[bytes] = []
    for index, part in enumerate(parts):
        info, data = read_wav(part)
        if (info.rate, info.width, info.channels) != (SAMPLE_RATE, SAMPLE_WIDTH, CHANNELS):
            raise ValueError(
                f"WAV part {index} is {info.rate} Hz, {info.width * 8}-bit, "
                f"{info.channels} channel(s); expected {SAMPLE_RATE} Hz 16-bit mono"
            )
        if index and gap_s:
            frames.append(silence(gap_s))
        frames.append(data)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(CHANNELS)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(frames))
    return buffer.getvalue()


def loud_fraction(frames: bytes) -> float:
    """Share of samples above the silence threshold: an empty or silent file scores 0."""
    count = len(frames) // SAMPLE_WIDTH
    if not count:
        return 0.0
    samples = struct.unpack(f"<{count}h", frames[: count * SAMPLE_WIDTH])
    return sum(1 for s in samples if abs(s) > SILENCE_THRESHOLD) / count


if __name__ == "__main__":
    print(write_chime(SHIPPED_CHIME))
