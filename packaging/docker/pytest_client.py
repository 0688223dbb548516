"""Run pytest through the tests container's warm server (pytest_server.py):
this process's arguments, environment, working folder and standard streams
go to a pytest forked from the server, and this process exits with its exit
code. Without a server to reach it runs pytest itself. Nothing here is
slow to import: the point is to start no Python that imports pytest.
"""

import json
import os
import socket
import struct
import sys

SOCKET = os.environ.get("DIST_TEST_PYTEST_SOCKET", "/tmp/dist-test-pytest.sock")


def main(args):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET)
    except OSError:
        conn.close()
        os.execvp("pytest", ["pytest", *args])
    body = json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(conn, [struct.pack("!I", len(body)) + body], [0, 1, 2])
    reply = b""
    while len(reply) < 4:
        more = conn.recv(4 - len(reply))
        if not more:
            print("pytest_client: the tests container's pytest server went away", file=sys.stderr)
            return 1
        reply += more
    (code,) = struct.unpack("!i", reply)
    # A pytest killed by a signal ends as a shell reports it.
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
