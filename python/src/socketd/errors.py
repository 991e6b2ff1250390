"""The exceptions of the socketd package.

Every exception the package raises on purpose derives from :class:`Error`.

* :class:`ServerError` and its subclasses: the server answered with an
  error status.  There is one subclass per status of protocol v1 and v1.1;
  a status this package does not know is still an error (a plain
  :class:`ServerError` whose ``status`` says which).
* :class:`ConnectionError`: the connection could not be made or was lost.
  It is also a built-in :class:`builtins.ConnectionError`.
* :class:`TimeoutError`: an operation did not finish in time (on this
  side; the server's handler timeout is :class:`HandlerTimeout`).  It is
  also a built-in :class:`builtins.TimeoutError`.  The connection it
  happened on has been closed: a late answer can never reach the next
  caller.
* :class:`ProtocolError`: the peer broke the framing or answered the wrong
  request.  The connection has been closed.

Bad arguments (an opcode outside 0..255, a negative timeout, a payload
that is not bytes) raise the built-in ValueError or TypeError.
"""

from __future__ import annotations

import builtins
from typing import ClassVar

__all__ = [
    "Error",
    "ServerError",
    "UnknownOpcode",
    "BadRequest",
    "TooLarge",
    "Busy",
    "Internal",
    "UnsupportedVersion",
    "Denied",
    "HandlerTimeout",
    "Overloaded",
    "InvalidTopic",
    "Forbidden",
    "LimitExceeded",
    "NotSubscribed",
    "ConnectionError",
    "TimeoutError",
    "ProtocolError",
    "SubscriptionClosed",
    "error_for_status",
    "STATUS_NAMES",
]


class Error(Exception):
    """Base class of every error raised by the socketd package."""


class ServerError(Error):
    """The server answered a request with an error status.

    ``status`` is the numeric status, ``message`` the server's short
    human-readable text (match on the class or the status, never on the
    text).  ``opcode`` and ``request_id`` are those of the answer.

    Handler processes (:func:`socketd.serve`) raise these to answer with a
    status: ``raise socketd.BadRequest("want a number")``.
    """

    #: The status this class stands for (-1 on the base class).
    STATUS: ClassVar[int] = -1
    #: Whether the server closes the connection after this answer.
    CLOSES_CONNECTION: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        opcode: int = 0,
        request_id: int = 0,
    ) -> None:
        if status is None:
            status = self.STATUS
        if not 1 <= status <= 0xFFFF:
            raise ValueError(
                "ServerError needs an error status, 1..65535"
                if status == -1
                else f"status {status} is not an error status (1..65535)"
            )
        super().__init__(message)
        self.status = status
        self.message = message
        self.opcode = opcode
        self.request_id = request_id

    def __str__(self) -> str:
        name = STATUS_NAMES.get(self.status, f"status {self.status}")
        if self.message:
            return f"{name}: {self.message}"
        return name


class UnknownOpcode(ServerError):
    """Status 1: the server does not serve this opcode (or name)."""

    STATUS = 1


class BadRequest(ServerError):
    """Status 2: the request was malformed (payload, flags, arguments)."""

    STATUS = 2


class TooLarge(ServerError):
    """Status 3: the frame exceeded the server's max_frame_size.

    The server closes the connection after this answer; the client opens
    a new one for the next request.
    """

    STATUS = 3
    CLOSES_CONNECTION = True


class Busy(ServerError):
    """Status 4: the server refused the connection (too many of them)."""

    STATUS = 4
    CLOSES_CONNECTION = True


class Internal(ServerError):
    """Status 5: the server (or a handler) failed to answer."""

    STATUS = 5


class UnsupportedVersion(ServerError):
    """Status 6: the server does not speak this protocol version."""

    STATUS = 6


class Denied(ServerError):
    """Status 7: access control refused the connection."""

    STATUS = 7
    CLOSES_CONNECTION = True


class HandlerTimeout(ServerError):
    """Status 8 (TIMEOUT): a server-side handler did not answer in time.

    Not a :class:`TimeoutError`: the server answered, the connection is
    fine.
    """

    STATUS = 8


class Overloaded(ServerError):
    """Status 9: the server's handler queue is full; retry later."""

    STATUS = 9


class InvalidTopic(ServerError):
    """Status 10: a pub/sub topic or filter breaks the topic syntax."""

    STATUS = 10


class Forbidden(ServerError):
    """Status 11: pub/sub permissions refuse this publish or subscribe."""

    STATUS = 11


class LimitExceeded(ServerError):
    """Status 12: too many subscriptions, or a message too large."""

    STATUS = 12


class NotSubscribed(ServerError):
    """Status 13: UNSUBSCRIBE of a subscription the connection lacks."""

    STATUS = 13


class ConnectionError(Error, builtins.ConnectionError):
    """The connection could not be made, or was lost mid-request."""


class SubscriptionClosed(ConnectionError):
    """The server ended this connection's subscriptions.

    Raised by a subscription's iterator after a pub/sub NOTICE that closes
    the connection (SLOW_CONSUMER, PERMISSIONS_CHANGED).  ``reason`` is the
    notice's reason code (0 when the connection was simply lost).
    """

    def __init__(self, message: str, reason: int = 0) -> None:
        super().__init__(message)
        self.reason = reason


class TimeoutError(Error, builtins.TimeoutError):
    """No answer (or no connection) within the timeout.

    The connection has been dropped: its late answer cannot reach another
    request.
    """


class ProtocolError(Error):
    """The peer broke protocol v1 (bad frame, unexpected request_id).

    The connection has been dropped.
    """


_CLASSES: dict[int, type[ServerError]] = {
    cls.STATUS: cls
    for cls in (
        UnknownOpcode,
        BadRequest,
        TooLarge,
        Busy,
        Internal,
        UnsupportedVersion,
        Denied,
        HandlerTimeout,
        Overloaded,
        InvalidTopic,
        Forbidden,
        LimitExceeded,
        NotSubscribed,
    )
}

#: Status code -> protocol name, for messages.
STATUS_NAMES: dict[int, str] = {
    0: "OK",
    1: "UNKNOWN_OPCODE",
    2: "BAD_REQUEST",
    3: "TOO_LARGE",
    4: "BUSY",
    5: "INTERNAL",
    6: "UNSUPPORTED_VERSION",
    7: "DENIED",
    8: "TIMEOUT",
    9: "OVERLOADED",
    10: "INVALID_TOPIC",
    11: "FORBIDDEN",
    12: "LIMIT_EXCEEDED",
    13: "NOT_SUBSCRIBED",
}


def error_for_status(
    status: int, message: str, *, opcode: int = 0, request_id: int = 0
) -> ServerError:
    """The exception for an error answer (status != 0).

    A status without a class of its own gives a plain :class:`ServerError`.
    """
    cls = _CLASSES.get(status, ServerError)
    return cls(message, status=status, opcode=opcode, request_id=request_id)
