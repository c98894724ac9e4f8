#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/seed-*: the seed corpus, drawn from the string literals of
the test suite (requests, chunked bodies, field values, targets), so the fuzzers start
from inputs the tests already know to matter. Run from the repository root; it replaces
only seed-* files (crash-* inputs found by fuzzing stay)."""
import hashlib, pathlib, random, re

ROOT = pathlib.Path(__file__).resolve().parent.parent
LITERAL = re.compile(rb'b?"((?:[^"\\]|\\.|\\\n)*)"', re.S)
ESCAPE = re.compile(rb'\\(x[0-9a-fA-F]{2}|\n\s*|.)')
SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"0": b"\0", b"\\": b"\\", b'"': b'"', b"'": b"'"}
PER_TARGET = 60


def literals(*paths):
    for path in paths:
        text = (ROOT / path).read_bytes()
        for m in LITERAL.finditer(text):
            def unescape(e):
                e = e.group(1)
                if e.startswith(b"x"):
                    return bytes([int(e[1:], 16)])
                return b"" if e.startswith(b"\n") else SIMPLE.get(e, b"\\" + e)
            yield ESCAPE.sub(unescape, m.group(1))


def field_values(heads, names):
    for head in heads:
        for line in head.split(b"\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in names:
                yield value.strip()


def write(target, seeds):
    out = ROOT / "fuzz/corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("seed-*"):
        old.unlink()
    unique = list(dict.fromkeys(s for s in seeds if s))
    random.Random(target).shuffle(unique)
    for seed in unique[:PER_TARGET]:
        (out / f"seed-{hashlib.sha1(seed).hexdigest()[:12]}").write_bytes(seed)


def main():
    tests = ["src/http/parse_tests.rs", "src/http/parse_fields_tests.rs", "src/http/parse_limits_tests.rs",
             "tests/http_protocol.rs", "tests/static_files.rs", "tests/conn_machine.rs", "src/lifecycle/tests.rs"]
    heads = [s for s in literals(*tests) if b"HTTP/" in s and b"\n" in s]
    chunked = [s for s in literals("src/http/chunked.rs") if re.match(rb"[0-9a-fA-F]", s) and b"\r\n" in s]
    # One-line values only: a `'"'` in the source pairs quotes wrongly across lines.
    fields = [s for s in literals("src/http/fields.rs", "src/http/date.rs", "tests/field_properties.rs")
              if b"\n" not in s and len(s) < 80]
    fields += field_values(heads, {b"range", b"if-range", b"if-none-match", b"if-modified-since",
                                   b"accept-encoding"})
    targets = [s for s in literals("src/files/resolve.rs") if s[:1] == b"/" or s.startswith(b"http")]
    targets += [h.split(b" ")[1] for h in heads if h.count(b" ") >= 2]
    rng = random.Random(20)
    # conn: a length byte, that many piece sizes, then a pipeline of two or three requests.
    conn = []
    for i in range(PER_TARGET):
        sizes = bytes(rng.randrange(1, 40) for _ in range(i % 8))
        conn.append(bytes([len(sizes)]) + sizes + b"".join(rng.sample(heads, min(len(heads), 1 + i % 3))))
    # core: a cap byte and operations (see lifecycle::invariants::decode), random.
    core = [bytes(rng.randrange(256) for _ in range(rng.randrange(8, 200))) for _ in range(PER_TARGET)]
    write("parser", heads)
    write("chunked", chunked)
    write("fields", fields)
    write("paths", targets)
    write("conn", conn)
    write("core", core)


main()
