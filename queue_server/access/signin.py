"""How often a sign-in may be tried: per username across addresses, and per address across
usernames, counting failures only.

- A username's failures are free up to `login_rate` (e.g. 10 per 5 minutes); past that each
  further failure makes the next try wait twice as long (1 s, 2 s, 4 s … at most a minute).
  A stranger can slow a person's sign-in by a minute, never lock them out; a guesser gets a
  few dozen tries an hour, against passwords that need 10^8 (see `passwords.py`).
- An address's failures, whatever the username, are limited by `login_rate_address`: spraying
  every username from one address stops there (that address alone is refused).
- A correct sign-in is not counted, and clears the username's failures.
"""

from __future__ import annotations

import math
import time

from queue_server.access.ratelimit import Limit, MemoryLimiter, RedisLimiter
from queue_server.errors import RateLimited

DELAY_FIRST_S = 1.0
DELAY_MAX_S = 60.0
DELAY_DOUBLINGS_MAX = 6  # 1 s doubled 6 times passes the minute

Limiter = MemoryLimiter | RedisLimiter


def _user_key(username: str) -> str:
    return f"login-user:{username.lower()}"


def _address_key(address: str, limit: Limit, now: float) -> str:
    return f"login-addr:{address}:{int(now // limit.seconds)}"


async def check_sign_in(limiter: Limiter, username: str, address: str, per_address: Limit) -> None:
    """Before the password is checked: RateLimited if this address or username must wait."""
    now = time.time()
    if await limiter.peek(_address_key(address, per_address, now)) >= per_address.count:
        retry = max(1, math.ceil(per_address.seconds - now % per_address.seconds))
        raise RateLimited(
            f"Too many failed sign-ins from this address. Try again in {retry} s.",
            retry_after=retry,
        )
    wait = await limiter.held_for(_user_key(username) + ":hold")
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise RateLimited(
            f"Too many wrong passwords for this username. Try again in {retry} s.",
            retry_after=retry,
        )


async def sign_in_failed(
    limiter: Limiter, username: str, address: str, per_user: Limit, per_address: Limit
) -> None:
    """Count a failure against the address and the username; past the username's free
    failures, hold its next try back for a doubling delay."""
    now = time.time()
    await limiter.incr(_address_key(address, per_address, now), per_address.seconds + 1)
    failures = await limiter.incr(_user_key(username), per_user.seconds)
    if failures >= per_user.count:
        doublings = min(failures - per_user.count, DELAY_DOUBLINGS_MAX)
        delay = min(DELAY_MAX_S, DELAY_FIRST_S * 2**doublings)
        await limiter.hold(_user_key(username) + ":hold", delay)


async def sign_in_succeeded(limiter: Limiter, username: str) -> None:
    await limiter.reset(_user_key(username))
