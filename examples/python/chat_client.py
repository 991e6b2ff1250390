#!/usr/bin/env python3
"""The tutorials' chat client, done with socketd pub/sub.

Lines you type are published to chat.ROOM as "NAME: text"; what the
others say is printed as it arrives (NO_ECHO: not your own lines).
Ctrl-D leaves.

    python3 chat_client.py ROOM [--name NAME] [--host HOST] [--port PORT]
"""

import argparse
import getpass
import sys
import threading

import socketd


def main() -> int:
    ap = argparse.ArgumentParser(description="chat over socketd pub/sub")
    ap.add_argument("room")
    ap.add_argument("--name", default=getpass.getuser())
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7411)
    args = ap.parse_args()
    topic = f"chat.{args.room}"

    try:
        with socketd.Client(args.host, args.port) as client:
            messages = client.subscribe(topic, no_echo=True)

            def show() -> None:
                try:
                    for msg in messages:
                        print(msg.data.decode(errors="replace"), flush=True)
                except socketd.Error as e:
                    print(f"chat_client: {e}", file=sys.stderr)

            threading.Thread(target=show, daemon=True).start()
            print(f"* {args.name} in {topic}; Ctrl-D leaves", file=sys.stderr)
            for line in sys.stdin:
                text = line.rstrip("\n")
                if text:
                    client.publish(topic, f"{args.name}: {text}".encode())
            messages.unsubscribe()
    except socketd.Error as e:
        print(f"chat_client: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
