"""The permission rules, in one place, for every HTTP route and every feed.

Each route declares an access level; `authorize` says whether a principal may use it for a
branch. Refusals are 401 for nobody-signed-in and 403 for the wrong role or branch.
"""

from __future__ import annotations

from queue_server.access.principal import Principal, Role
from queue_server.errors import Forbidden, Unauthorized

STAFF = frozenset({Role.OPERATOR, Role.MANAGER})

# access level → the roles (besides admin, who may do everything) allowed at their own branch.
RULES: dict[str, frozenset[Role]] = {
    "public": frozenset(),  # anyone, even anonymous
    "issue": frozenset({Role.KIOSK, Role.OPERATOR, Role.MANAGER}),  # + anonymous phones
    "check_in": frozenset({Role.KIOSK, Role.OPERATOR, Role.MANAGER}),  # a booking's arrival
    "display": frozenset({Role.DISPLAY, Role.OPERATOR, Role.MANAGER}),
    # The public board feed: a kiosk follows it too, to refresh its services on an edit.
    "board": frozenset({Role.DISPLAY, Role.KIOSK, Role.OPERATOR, Role.MANAGER}),
    "staff": STAFF,
    "operator": STAFF,
    "manager": frozenset({Role.MANAGER}),
    "printer": frozenset({Role.PRINTER}),
    "node": frozenset({Role.NODE}),  # a branch node, for its own branch only
    "signed_in": frozenset({Role.OPERATOR, Role.MANAGER}),  # any branch: own session routes
    "admin": frozenset(),
}


def authorize(
    principal: Principal, access: str, branch: str | None, *, allow_anonymous_issue: bool = True
) -> None:
    """Raise Unauthorized or Forbidden unless `principal` may use `access` at `branch`."""
    if access not in RULES:
        raise Forbidden(f"No permission rule for {access!r}.", code="no_rule")
    if access == "public":
        return
    if principal.role is None:
        if access == "issue" and allow_anonymous_issue:
            return
        raise Unauthorized("Sign in, or use a device token, to do this.")
    if principal.must_change_password and access != "signed_in":
        raise Forbidden(
            "Choose a new password first (POST /api/v1/session/password).",
            code="password_change_required",
        )
    if principal.role is Role.ADMIN:
        return
    if principal.role not in RULES[access]:
        raise Forbidden(f"A {principal.role.value} may not do this.", code="forbidden_role")
    if access != "signed_in" and branch is not None and principal.branch != branch:
        raise Forbidden("This belongs to another branch.", code="forbidden_branch")
