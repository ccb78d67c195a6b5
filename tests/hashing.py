"""Tests hash passwords with argon2 at its cheapest cost, not the product's.

The product hashes with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, three
passes, four lanes), about 0.2 s of CPU for each hash and each check on this machine, by design.
A test server signs in a person or two per test and makes each of them once: over the suite that
was minutes of CPU spent on key stretching that no test looks at, as Django's own test settings
avoid with a fast hasher. Here the same argon2id, with the same salt and hash lengths, runs at
one pass over 8 KiB (~0.1 ms). Servers a test starts as processes (scale-out, the CLIs) keep
the product's hasher, and check the cheap hashes the tests stored (a hash carries its own
parameters); `test_security_signin` holds the product's parameters to RFC 9106."""

from __future__ import annotations

from argon2 import PasswordHasher

# The product's hasher, as its module made it, before `hash_cheaply` (for the test that checks it).
PRODUCT_HASHER: PasswordHasher | None = None


def hash_cheaply() -> None:
    """Swap `queue_server.access.passwords`' hasher (and the hash it checks unknown users
    against) for argon2id at one pass over 8 KiB, in this process."""
    global PRODUCT_HASHER
    from queue_server.access import passwords

    if PRODUCT_HASHER is None:
        PRODUCT_HASHER = passwords._hasher
    product = PRODUCT_HASHER
    cheap = PasswordHasher(
        time_cost=1,
        memory_cost=8,
        parallelism=1,
        hash_len=product.hash_len,
        salt_len=product.salt_len,
        type=product.type,
    )
    passwords._hasher = cheap
    passwords._DUMMY_HASH = cheap.hash("not-a-real-password")
