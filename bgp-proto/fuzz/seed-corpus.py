#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (corpus/TARGET/SHA1) from the byte vectors
of real peers (../tests/vectors/peers.txt) and the rule table (../tests/data/rules.txt).
Run from anywhere; rerun after regenerating the vectors."""
import hashlib, os, struct

here = os.path.dirname(os.path.abspath(__file__))
messages = []  # (context flags, whole message)
with open(os.path.join(here, "../tests/vectors/peers.txt")) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("frr", "bird", "gobgp"):
            messages.append(bytes.fromhex(parts[1]))
rules = []
with open(os.path.join(here, "../tests/data/rules.txt")) as f:
    for block in f.read().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith("#"))
        if "hex" in fields:
            rules.append(bytes.fromhex(fields["hex"].replace(" ", "")))

def write(target, data):
    folder = os.path.join(here, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as out:
        out.write(data)

def attributes(update):
    body = update[19:]
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen:4 + wlen], "big")
    attrs, at = body[4 + wlen:4 + wlen + alen], 0
    while at + 3 <= len(attrs):
        flags, code = attrs[at], attrs[at + 1]
        ext = flags & 0x10
        head = 4 if ext else 3
        if at + head > len(attrs):
            return
        length = int.from_bytes(attrs[at + 2:at + 4], "big") if ext else attrs[at + 2]
        yield flags, code, attrs[at + head:at + head + length]
        at += head + length
    yield None, None, body[4 + wlen + alen:]  # the NLRI field

def capabilities(open_):
    params, at = open_[29:], 0
    while at + 2 <= len(params):
        kind, length = params[at], params[at + 1]
        value, at = params[at + 2:at + 2 + length], at + 2 + length
        inner = 0
        while kind == 2 and inner + 2 <= len(value):
            code, clen = value[inner], value[inner + 1]
            yield bytes([code]) + value[inner + 2:inner + 2 + clen]
            inner += 2 + clen

for message in messages + rules:
    if len(message) < 19:
        continue
    for flags in (0, 4):
        write("message", bytes([flags]) + message)
    kind = message[18]
    if kind == 2:
        write("update", bytes([4 if len(message) > 23 else 0]) + message[19:])
        for flags, code, value in attributes(message):
            if code is None:
                write("nlri", b"\x00" + value)
                write("nlri", b"\x01" + value)
            else:
                write("attribute", bytes([0, flags, code]) + value)
                if code in (2, 17):
                    write("as_path", b"\x01" + value)
                if code == 14 and len(value) > 5:
                    nh = value[3]
                    write("nlri", (b"\x02" if value[1] == 2 else b"\x00") + value[5 + nh:])
    if kind == 1:
        write("open", message[19:])
        for capability in capabilities(message):
            write("capability", capability)

streams, current = [], b""
with open(os.path.join(here, "../tests/vectors/peers.txt")) as f:
    for line in f:
        if line.startswith("session") and current:
            streams.append(current)
            current = b""
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("frr", "bird", "gobgp"):
            current += bytes.fromhex(parts[1])
streams.append(current)
for stream in streams:
    for cut in (7, 64, 255):
        write("stream", bytes([0, cut]) + stream[:8192])
for target in sorted(os.listdir(os.path.join(here, "corpus"))):
    print(target, len(os.listdir(os.path.join(here, "corpus", target))))
