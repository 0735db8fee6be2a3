#!/usr/bin/python3
"""Relay one guest TCP connection to 127.0.0.1:PORT on the host.

QEMU's user-mode network runs this once per guest connection to 10.0.2.100:80
(`-netdev user,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/python3 relay.py PORT`);
stdin/stdout are the guest side of the connection. Half-closes are passed on, so an HTTP client
that shuts down its sending side still gets the whole answer.
"""
import os
import select
import socket
import sys


def main() -> int:
    port = int(sys.argv[1])
    up = socket.create_connection(("127.0.0.1", port), timeout=10)
    up.settimeout(None)
    gin, gout = 0, 1
    guest_open, up_open = True, True
    while up_open:
        rl = [up] + ([gin] if guest_open else [])
        ready, _, _ = select.select(rl, [], [], 300)
        if not ready:
            return 1  # idle for 5 minutes: give up
        if guest_open and gin in ready:
            data = os.read(gin, 65536)
            if data:
                up.sendall(data)
            else:
                guest_open = False
                try:
                    up.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if up in ready:
            data = up.recv(65536)
            if not data:
                up_open = False
                break
            view = memoryview(data)
            while view:
                n = os.write(gout, view)
                view = view[n:]
    up.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        sys.stderr.write(f"relay: {e}\n")
        sys.exit(1)
