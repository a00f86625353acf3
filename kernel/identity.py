"""Who is calling: the system (its mTLS client certificate) and the official it asserts.

The system is the common name of the client certificate the connection
was made with; the server refuses connections without one. What the
system may do is its entry in the registry of calling systems
(``kernel.systems``), which the interceptor attaches as the caller's
``scope``. The acting official is asserted by the system in the
``x-govhall-official`` metadata entry and checked by each service against
its staff directory and the system's scope (``kernel.directory``).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kernel.errors import InvalidArgument, Unauthenticated

if TYPE_CHECKING:
    from kernel.systems import CallingSystem

OFFICIAL_METADATA_KEY = "x-govhall-official"
OFFICIAL_ID_PATTERN = re.compile(r"^[A-Z]{2,6}-[0-9]{3}$")


@dataclass(frozen=True)
class Caller:
    """The system that called and the official it acts for ('' when none is asserted).

    ``scope`` is the system's registry entry, as the interceptor admitted the
    call; without one (a caller made outside an RPC) the system speaks for
    nobody.
    """

    system: str
    official_id: str = ""
    scope: CallingSystem | None = field(default=None, compare=False)


_current_caller: ContextVar[Caller | None] = ContextVar("govhall_caller", default=None)


def system_from(common_names: list[bytes]) -> str:
    """The calling system: the common name of the peer's certificate."""
    if not common_names:
        raise Unauthenticated("a client certificate issued by the center's CA is required")
    return common_names[0].decode("utf-8", errors="replace")


def official_from(metadata: dict[str, str]) -> str:
    """The official the call asserts; '' for none."""
    official_id = metadata.get(OFFICIAL_METADATA_KEY, "")
    if official_id and not OFFICIAL_ID_PATTERN.fullmatch(official_id):
        raise InvalidArgument(
            f"metadata {OFFICIAL_METADATA_KEY} must be an official id such as SCJGJ-001")
    return official_id


def caller_from(common_names: list[bytes], metadata: dict[str, str]) -> Caller:
    """Build the caller from the peer's certificate names and the call's metadata."""
    return Caller(system=system_from(common_names), official_id=official_from(metadata))


def set_current_caller(caller: Caller) -> None:
    _current_caller.set(caller)


def current_caller() -> Caller:
    """The caller of the RPC being served; only valid inside a call."""
    caller = _current_caller.get()
    if caller is None:
        raise Unauthenticated("no caller is known outside an RPC")
    return caller
