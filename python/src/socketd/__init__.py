"""socketd: clients and a handler helper for the socketd protocol.

Standard library only.  The blocking client::

    import socketd

    with socketd.Client("127.0.0.1", 7411, timeout=5.0) as c:
        c.ping()
        print(c.echo(b"hi"), c.info()["version"], c.time())

The asyncio client has the same methods, awaited: :class:`socketd.aio.Client`.
A handler process for socketd's ``processes`` setting::

    socketd.serve({"upper": lambda data: data.upper()})

See docs/python.md in the socketd sources for the guide.
"""

from __future__ import annotations

from ._proto import Message, Opcode
from .client import Client, Pipeline, Subscription
from .errors import (
    STATUS_NAMES,
    BadRequest,
    Busy,
    ConnectionError,
    Denied,
    Error,
    Forbidden,
    HandlerTimeout,
    Internal,
    InvalidTopic,
    LimitExceeded,
    NotSubscribed,
    Overloaded,
    ProtocolError,
    ServerError,
    SubscriptionClosed,
    TimeoutError,
    TooLarge,
    UnknownOpcode,
    UnsupportedVersion,
    error_for_status,
)
from .handler import serve

__version__ = "1.0.0"

__all__ = [
    "Client",
    "Pipeline",
    "Subscription",
    "Message",
    "Opcode",
    "serve",
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
    "STATUS_NAMES",
    "error_for_status",
]
