#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (corpus/TARGET/SHA1) from the byte vectors
of ../tests/vectors: every datagram for `packet`; for `session`, the packets one FRR
bfdd sent (frr-bfdd-a.txt) as one script, each preceded by time passing.
Run from anywhere; rerun after regenerating the vectors."""
import hashlib, os

here = os.path.dirname(os.path.abspath(__file__))
vectors = os.path.join(here, "../tests/vectors")

def rows(name):
    with open(os.path.join(vectors, name)) as f:
        return [[p.strip() for p in l.split("|")] for l in f if l.strip() and not l.startswith("#")]

def write(target, data):
    folder = os.path.join(here, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as out:
        out.write(data)

for row in rows("frr-bfdd.txt"):
    write("packet", bytes.fromhex(row[1]))
for row in rows("rfc5880-checks.txt"):
    write("packet", bytes.fromhex(row[1]))

# session: config byte 0x92, then per packet: time passes (op 2 with the largest step)
# and the packet (op 0x80: addressed to the session's discriminator).
script = bytearray([0x92])
previous = 0.0
for row in rows("frr-bfdd-a.txt"):
    at = float(row[0])
    steps = int((at - previous) * 1000 / 37 / 31)
    for _ in range(min(steps, 20)):
        script.append(2 | (31 << 3))
    script.append(0x80)
    script += bytes.fromhex(row[1])
    previous = at
write("session", bytes(script))
write("session", bytes(script[:200]))
write("session", bytes([0x00, 0x06 | 0x80, 0x02 | 0xf8, 0x06, 0x07, 0x55]))
