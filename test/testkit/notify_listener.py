#!/usr/bin/env python3
"""A stand-in for systemd's notify socket (sd_notify(3)), independent of the sidecar's code.

Binds a unix datagram socket, prints one JSON line per datagram: the sender's pid (from
SCM_CREDENTIALS, which systemd checks against the main pid), the KEY=VALUE fields, and, for
READY=1, whether the sidecar was already serving at that instant (its ingest socket accepts a
connection and its runtime file exists). Exits when stdin closes.
"""
import json
import os
import select
import socket
import struct
import sys

path, ingest_socket, runtime_file = sys.argv[1], sys.argv[2], sys.argv[3]


def serving():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(ingest_socket)
        return os.path.exists(runtime_file)
    except OSError:
        return False
    finally:
        c.close()


s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
print(json.dumps({"listening": path}), flush=True)
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [], 30)
    if sys.stdin in ready and not sys.stdin.readline():
        break
    if s not in ready:
        continue
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    fields = dict(line.split("=", 1) for line in msg.decode().split("\n") if "=" in line)
    out = {"pid": pid, "fields": fields}
    if fields.get("READY") == "1":
        out["serving"] = serving()
    print(json.dumps(out), flush=True)
