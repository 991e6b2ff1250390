#!/usr/bin/python3
"""The same handlers as upper.py on the socketd Python package
(python3-socketd): socketd.serve() speaks the protocol; the handlers
only turn bytes into bytes.  Raise socketd.BadRequest("...") to answer
BAD_REQUEST; any other exception answers INTERNAL and is logged.

    processes = (
      { name = "pkg"; command = [ "/usr/bin/python3",
          "/usr/share/doc/socketd/examples/processes/hello_pkg.py" ];
        opcode = 0xc0; instances = 2; }
    );
"""
import socketd


def upper(data: bytes) -> bytes:
    return data.upper()


def reverse(data: bytes) -> bytes:
    return data[::-1]


socketd.serve({"upper": upper, "reverse": reverse})
