"""Who is asking: a signed-in person, a device, or nobody."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OPERATOR = "operator"
    KIOSK = "kiosk"
    DISPLAY = "display"
    PRINTER = "printer"
    NODE = "node"  # a branch node replicating its branch (docs/offline.md); not a device


PEOPLE = (Role.ADMIN, Role.MANAGER, Role.OPERATOR)
DEVICES = (Role.KIOSK, Role.DISPLAY, Role.PRINTER)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request or feed. `branch` is None only for admins and anonymous."""

    role: Role | None
    id: str | None = None
    name: str | None = None
    branch: str | None = None
    csrf_token: str | None = None  # set when authenticated by a session cookie
    # A reset password: nothing but choosing a new one until it is (`password_change_required`).
    must_change_password: bool = False
    allowed_counters: tuple[str, ...] = ()  # an operator's counters; empty = any of the branch

    @property
    def is_person(self) -> bool:
        return self.role in PEOPLE

    @property
    def is_device(self) -> bool:
        return self.role in DEVICES

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        if self.role is None:
            return "anonymous"
        return f"{self.role.value}:{self.name or self.id}"


ANONYMOUS = Principal(role=None)
