"""Password hashing with argon2 (argon2-cffi's defaults follow RFC 9106), and the policy a new
password must meet: long enough, and not guessable. Guessability is zxcvbn's estimate (the
maintained Python port of Dropbox's estimator): it knows the common-password lists, words,
names, keyboard walks, repeats (`aaaaaaaaaa`) and sequences, and the user's own name."""

from __future__ import annotations

from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 10
# zxcvbn's score 3: "safely unguessable", about 10^8 guesses or more. Its checks cost time that
# grows with the length, so it looks at the first 72 characters (its own default limit).
MIN_STRENGTH_SCORE = 3
STRENGTH_CHECKED_CHARS = 72
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def check_password(password: str, user_inputs: Sequence[str] = ()) -> None:
    """Raise ValueError saying why `password` is not good enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    strength = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=list(user_inputs))
    if strength["score"] < MIN_STRENGTH_SCORE:
        raise ValueError(
            "this password is too easy to guess (a common password, a word or a name, a "
            "repeat or a sequence); a few unrelated words make a good one"
        )


def hash_password(password: str, user_inputs: Sequence[str] = ()) -> str:
    """The argon2 hash of a password that meets the policy (else ValueError)."""
    check_password(password, user_inputs)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
