"""A local Web Push service for tests: takes what a push service takes (RFC 8030/8291/8292),
checks the VAPID JWT against the key it carries (ES256, audience, expiry) and decrypts the
aes128gcm body with the subscriber's keys, as a browser would. Runs in a uvicorn thread."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_private_key() -> str:
    """A new VAPID private key, raw and base64url, as `webpush://…&key=` takes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass
class Browser:
    """One browser's push subscription: the keys only it holds to decrypt what it is sent."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


def check_vapid(authorization: str, audience: str) -> dict[str, Any]:
    """The claims of a `vapid t=<JWT>, k=<key>` header, after checking its signature with the
    key it names, its audience and its expiry; raises ValueError otherwise."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"not a VAPID authorization: {scheme}")
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    header, claims, signature = parts["t"].split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    if json.loads(unb64url(header))["alg"] != "ES256":
        raise ValueError("not ES256")
    body = json.loads(unb64url(claims))
    if body["aud"] != audience or body["exp"] < time.time() or not body.get("sub"):
        raise ValueError(f"bad claims {body}")
    return body  # type: ignore[no-any-return]


class PushService:
    def __init__(self) -> None:
        self.port = free_port()
        self.browsers: dict[str, Browser] = {}
        self.received: list[dict[str, Any]] = []  # decrypted payloads, with the endpoint's id
        self.refused: list[str] = []
        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/push/{name}", self._push, methods=["POST"])]),
                host="127.0.0.1", port=self.port, log_level="warning",
            )
        )  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                break
            time.sleep(0.025)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(f"{self.origin}/push/{name}")
        return self.browsers[name]

    async def _push(self, request: Request) -> Response:
        name = request.path_params["name"]
        browser = self.browsers.get(name)
        if browser is None:
            return Response(status_code=410)  # unsubscribed
        try:
            claims = check_vapid(request.headers.get("authorization", ""), self.origin)
            if request.headers.get("content-encoding") != "aes128gcm":
                raise ValueError("not aes128gcm")
            plain = http_ece.decrypt(
                await request.body(),
                private_key=browser.private_key,
                auth_secret=browser.auth,
                version="aes128gcm",
            )
        except (ValueError, KeyError) as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=403)
        self.received.append({"to": name, "sub": claims["sub"], "ttl": request.headers.get("ttl")}
                             | json.loads(plain))  # fmt: skip
        return Response(status_code=201)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
