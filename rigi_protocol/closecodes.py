"""WebSocket close codes of every feed (`/ws/...`): the server sends them, the display client and
the printer agent act on them. 4000–4999 is the range RFC 6455 leaves to applications; the last
three digits follow the HTTP status they resemble."""

from __future__ import annotations

CLOSE_TRY_AGAIN = 1013  # RFC 6455's "try again later": the server is overloaded; reconnect
CLOSE_TOO_SLOW = 4008  # a client that does not keep up (or answer pings): reconnect, resume
CLOSE_RESYNC = 4009  # the server lost track of the stream: reconnect, resume from last seq
CLOSE_BAD_HELLO = 4400  # the first message was not a valid hello
CLOSE_UNAUTHORIZED = 4401  # the token is unknown or revoked
CLOSE_FORBIDDEN = 4403  # the token is valid but not for this feed, role or branch
CLOSE_UNKNOWN = 4404  # the branch (or what the hello names) does not exist

# Closes that reconnecting cannot cure: a person must fix the token or the configuration.
AUTH_CLOSE_CODES = frozenset({CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN})
SETUP_CLOSE_CODES = AUTH_CLOSE_CODES | {CLOSE_UNKNOWN, CLOSE_BAD_HELLO}
