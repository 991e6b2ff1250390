#!/usr/bin/env python3
"""The tutorials' echo client, on the socketd package.

Each line you type is sent to the server with ECHO and printed back.
Ctrl-D ends it.

    python3 echo_client.py [HOST [PORT]]
"""

import sys

import socketd


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 7411
    try:
        with socketd.Client(host, port, timeout=5.0) as client:
            for line in sys.stdin:
                reply = client.echo(line.encode())
                print(reply.decode(errors="replace"), end="", flush=True)
    except socketd.Error as e:
        print(f"echo_client: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
