#!/usr/bin/env python3
"""Writes the DNSParserFuzzer seed corpus into fuzz/corpus/ (or the directory given), byte for byte
the same on every run. Each seed is one DNS message (RFC 1035 §4.1), valid or deliberately broken."""

import os
import struct
import sys


def name(text, pointers=None, at=None):
    """Wire form of a dotted name; with `pointers` (suffix -> offset) and `at` (where it will be
    written), ends in a compression pointer to the longest suffix already written, and records the
    new suffixes."""
    labels = [l for l in text.split(".") if l]
    out = b""
    for i in range(len(labels)):
        suffix = ".".join(labels[i:]).lower()
        if pointers is not None and suffix in pointers:
            return out + struct.pack(">H", 0xC000 | pointers[suffix])
        if pointers is not None and at is not None:
            pointers[suffix] = at + len(out)
        label = labels[i].encode()
        out += bytes([len(label)]) + label
    return out + b"\x00"


def header(id, flags, qd=0, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", id, flags, qd, an, ns, ar)


class Message:
    """Builds a message section by section, compressing names as it goes."""

    def __init__(self, id, flags):
        self.id, self.flags = id, flags
        self.counts = [0, 0, 0, 0]
        self.body = b""
        self.pointers = {}

    def offset(self):
        return 12 + len(self.body)

    def name(self, text, compress=True):
        wire = name(text, self.pointers if compress else None, self.offset() if compress else None)
        self.body += wire

    def question(self, text, qtype, qclass=1):
        self.name(text)
        self.body += struct.pack(">HH", qtype, qclass)
        self.counts[0] += 1

    def record(self, section, owner, rtype, ttl, rdata, rclass=1):
        """`rdata` is bytes, or a function of the offset the data starts at (for names inside it)."""
        self.name(owner)
        self.body += struct.pack(">HHI", rtype, rclass, ttl)
        start = self.offset() + 2
        data = rdata(start) if callable(rdata) else rdata
        self.body += struct.pack(">H", len(data)) + data
        self.counts[section] += 1

    def rname(self, text, compress=True):
        """Record data that is one name, compressed against what is written so far."""
        return lambda at: name(text, self.pointers if compress else None, at if compress else None)

    def opt(self, payload=1232, ext_rcode=0, version=0, do=False, options=()):
        data = b"".join(struct.pack(">HH", code, len(value)) + value for code, value in options)
        ttl = ext_rcode << 24 | version << 16 | (0x8000 if do else 0)
        self.body += b"\x00" + struct.pack(">HHIH", 41, payload, ttl, len(data)) + data
        self.counts[3] += 1

    def bytes(self):
        return header(self.id, self.flags, *self.counts) + self.body


A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV = 1, 2, 5, 6, 12, 15, 16, 28, 33
QUERY_RD = 0x0100
RESPONSE = 0x8180  # QR, RD, RA
ANSWER, AUTHORITY, ADDITIONAL = 1, 2, 3


def seeds():
    # A plain query.
    m = Message(0x1234, QUERY_RD)
    m.question("www.example.com", A)
    yield "query-a", m.bytes()

    # A query with EDNS0: DO bit and a client cookie option (RFC 7873).
    m = Message(0xBEEF, QUERY_RD | 0x0020)
    m.question("web.default.svc.weft.internal", AAAA)
    m.opt(payload=1232, do=True, options=[(10, bytes(range(8)))])
    yield "query-aaaa-edns", m.bytes()

    # A response whose answers point back at the question (and at each other).
    m = Message(0x1234, RESPONSE)
    m.question("www.example.com", A)
    m.record(ANSWER, "www.example.com", CNAME, 300, m.rname("web.example.com"))
    m.record(ANSWER, "web.example.com", A, 60, bytes([10, 0, 0, 1]))
    m.record(ANSWER, "web.example.com", A, 60, bytes([10, 0, 0, 2]))
    yield "response-cname-a-compressed", m.bytes()

    # SRV answers (targets uncompressed, RFC 2782) with glue in the additional section, and EDNS.
    m = Message(7, RESPONSE | 0x0400)
    m.question("_http._tcp.web.default.svc.weft.internal", SRV)
    for i, port in enumerate((8080, 8081)):
        target = f"web-{i}.web.default.svc.weft.internal"
        m.record(ANSWER, "_http._tcp.web.default.svc.weft.internal", SRV, 5,
                 lambda at, t=target, p=port: struct.pack(">HHH", 0, 50, p) + name(t))
    for i in range(2):
        m.record(ADDITIONAL, f"web-{i}.web.default.svc.weft.internal", A, 5, bytes([10, 1, 0, 10 + i]))
    m.opt(payload=4096)
    yield "response-srv-glue-edns", m.bytes()

    # NXDOMAIN with the zone's SOA in the authority section.
    m = Message(0x0A0B, 0x8183 | 0x0400)
    m.question("missing.default.svc.weft.internal", A)
    def soa(at):
        primary = name("ns.weft.internal", m.pointers, at)
        mailbox = name("hostmaster.weft.internal", m.pointers, at + len(primary))
        return primary + mailbox + struct.pack(">IIIII", 2026112301, 3600, 600, 86400, 30)
    m.record(AUTHORITY, "weft.internal", SOA, 30, soa)
    yield "response-nxdomain-soa", m.bytes()

    # TXT: several strings, one empty, one 255 bytes long.
    m = Message(99, RESPONSE)
    m.question("txt.example.org", TXT)
    strings = [b"v=spf1 -all", b"", b"x" * 255]
    m.record(ANSWER, "txt.example.org", TXT, 3600, b"".join(bytes([len(s)]) + s for s in strings))
    yield "response-txt", m.bytes()

    # AAAA answer.
    m = Message(0x6666, RESPONSE)
    m.question("v6.example.net", AAAA)
    m.record(ANSWER, "v6.example.net", AAAA, 120, bytes.fromhex("20010db8000000000000000000000001"))
    yield "response-aaaa", m.bytes()

    # PTR for a reverse name.
    m = Message(0x0101, RESPONSE | 0x0400)
    m.question("2.0.0.10.in-addr.arpa", PTR)
    m.record(ANSWER, "2.0.0.10.in-addr.arpa", PTR, 5, m.rname("web-0.web.default.svc.weft.internal"))
    yield "response-ptr", m.bytes()

    # MX and NS with glue; mixed-case names (compression is case-insensitive, RFC 4343).
    m = Message(0x4D58, RESPONSE)
    m.question("Example.COM", MX)
    m.record(ANSWER, "example.com", MX, 300, lambda at: struct.pack(">H", 10) + name("mail.example.com", m.pointers, at + 2))
    m.record(AUTHORITY, "example.com", NS, 300, m.rname("ns1.example.com"))
    m.record(ADDITIONAL, "MAIL.example.com", A, 300, bytes([192, 0, 2, 25]))
    m.record(ADDITIONAL, "ns1.example.com", AAAA, 300, bytes(15) + b"\x01")
    yield "response-mx-ns-mixed-case", m.bytes()

    # EDNS with an extended response code (BADVERS = 16) and an unknown record type kept opaque.
    m = Message(0x0BAD, 0x8000)
    m.question("example.com", 65)
    m.record(ANSWER, "example.com", 65, 60, b"\x00\x01\x00\x00\x01\x00\x02\x68\x32")
    m.opt(payload=512, ext_rcode=1, version=0, options=[(8, b"\x00\x01\x18\x00\xc0\x00\x02"), (12, bytes(16))])
    yield "response-badvers-unknown-type", m.bytes()

    # An SRV target sent compressed (the decoder accepts it; re-encoding writes it in full).
    m = Message(0x5256, RESPONSE)
    m.question("_dns._udp.kube-dns.kube-system.svc.cluster.local", SRV)
    m.record(ANSWER, "_dns._udp.kube-dns.kube-system.svc.cluster.local", SRV, 30,
             lambda at: struct.pack(">HHH", 10, 100, 53) + name("kube-dns.kube-system.svc.cluster.local", m.pointers, at + 6))
    yield "response-srv-compressed-target", m.bytes()

    # A response cut off in the middle of its second answer.
    full = Message(0x7777, RESPONSE)
    full.question("cut.example.com", A)
    full.record(ANSWER, "cut.example.com", A, 60, bytes([1, 2, 3, 4]))
    full.record(ANSWER, "cut.example.com", A, 60, bytes([5, 6, 7, 8]))
    yield "truncated-mid-record", full.bytes()[:-5]

    # A question name that points at itself, and one that points forward.
    yield "pointer-self-loop", header(0x1001, 0, qd=1) + b"\xc0\x0c" + struct.pack(">HH", A, 1)
    yield "pointer-forward", header(0x1002, 0, qd=1) + b"\xc0\x0e\x03www\x00" + struct.pack(">HH", A, 1)
    # Two pointers that point at each other (the second via the first).
    loop = header(0x1003, 0x8000, qd=1, an=1) + b"\x01a\xc0\x0c" + struct.pack(">HH", A, 1)
    loop += b"\xc0\x0e" + struct.pack(">HHIH", A, 1, 0, 4) + bytes(4)
    yield "pointer-chain", loop

    # The smallest messages: a bare header, and too short for one.
    yield "header-only", header(0, 0)
    yield "short", bytes.fromhex("abcd0100")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for label, data in seeds():
        with open(os.path.join(out, label + ".bin"), "wb") as f:
            f.write(data)
        print(f"{label + '.bin':40} {len(data):5} bytes")


if __name__ == "__main__":
    main()
