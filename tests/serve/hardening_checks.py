#!/usr/bin/env python3
"""hardening_checks.py - the server findings of issue 23, each as a check (stdlib only).

Usage: hardening_checks.py PORT PID KEY [sanitized]
  an instance started with --api-key KEY --header-timeout 2 --max-conns-per-ip 8
  --max-prompt-tokens 200 --max-body 2M.
Checks: a slow-drip header is cut at the header deadline (slowloris); one address
cannot hold more than its share of connections while others are served; a 1 MB
prompt is refused without tokenizing it (peak RSS barely moves); a half-closed
client gets its answer; seeds outside int64/uint64 range, trailing data after the
JSON value and NUL characters in strings are 400; the Bearer scheme is matched
case-insensitively and the key exactly. Prints "PASS name" / "FAIL name: why".
"""
import json
import socket
import sys
import time

PORT, PID, KEY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SANITIZED = len(sys.argv) > 4 and sys.argv[4] == "sanitized"
HOST = "127.0.0.1"
failed = 0


def check(name, cond, why=""):
    global failed
    if cond:
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {why}")


def connect(src=None, timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((HOST, PORT))
    return s


def read_all(s, limit=10.0):
    """Everything the server sends until it closes (or `limit` seconds pass)."""
    data, end = b"", time.time() + limit
    s.settimeout(0.5)
    while time.time() < end:
        try:
            part = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not part:
            break
        data += part
    return data


def raw_request(body, path="/v1/completions", auth=None, src=None, half_close=False):
    """POST raw bytes; (status, parsed JSON or text). Connection: close."""
    auth = f"Bearer {KEY}" if auth is None else auth
    s = connect(src)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n")
    if auth:
        head += f"Authorization: {auth}\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    data = read_all(s, 60)
    s.close()
    if not data.startswith(b"HTTP/1."):
        return 0, data[:200]
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload[:200]


def post(doc, **kw):
    return raw_request(json.dumps(doc).encode(), **kw)


def get(path, auth=None):
    s = connect()
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if auth:
        head += f"Authorization: {auth}\r\n"
    s.sendall(head.encode() + b"\r\n")
    data = read_all(s, 30)
    s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0, data


def param_of(doc):
    return doc.get("error", {}).get("param") if isinstance(doc, dict) else None


def hwm_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


SMALL = {"prompt": "The moon", "max_tokens": 2, "temperature": 0}
s, d = post(SMALL)
check("baseline request -> 200", s == 200, f"{s} {d}")

# ---------------------------------------------------------------- 1. slowloris
sk = connect()
sk.sendall(b"POST /v1/completions HTTP/1.1\r\n")
t0, cut = time.time(), False
header = b"X-Drip: " + b"a" * 200
for i in range(len(header)):          # one byte every 0.25 s: never idle for 2 s
    if time.time() - t0 > 8:
        break
    try:
        sk.sendall(header[i:i + 1])
        sk.settimeout(0.25)
        if sk.recv(4096) == b"":
            cut = True
            break
    except socket.timeout:
        continue
    except OSError:
        cut = True
        break
took = time.time() - t0
sk.close()
# (no timing asserted beyond the drip window itself: 8 s, four times the deadline)
check("slowloris: a header dripped byte by byte is cut at the header deadline", cut,
      f"still open after {took:.1f} s of dripping (--header-timeout 2)")

# per-address limit: 8 idle connections from 127.0.0.2 fill its share
held = [connect("127.0.0.2") for _ in range(8)]
time.sleep(0.3)
extra = connect("127.0.0.2")
try:
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = read_all(extra, 3) == b""
except OSError:
    refused = True
extra.close()
check("per-address limit: the 9th connection from one address is refused", refused)
s, d = post(SMALL)
check("per-address limit: another address is still served", s == 200, f"{s} {d}")
for h in held:
    h.close()

# ---------------------------------------------------------------- 2. memory amplification
post({"prompt": "warm " * 150, "max_tokens": 1})   # tokenizer paths warm
base = hwm_kib()
big = {"prompt": "lucky numbers " * 75000, "max_tokens": 1}  # ~1 MB
s, d = post(big)
check("1 MB prompt -> 400 context_length_exceeded", s == 400 and isinstance(d, dict)
      and d.get("error", {}).get("code") == "context_length_exceeded", f"{s} {str(d)[:200]}")
grew = (hwm_kib() - base) / 1024
print(f"peak_rss_growth_mib {grew:.1f}")
if not SANITIZED:
    check("1 MB prompt: peak RSS grows < 12 MiB (the body, its JSON copy, no tokenization)", grew < 12,
          f"+{grew:.1f} MiB")

# ---------------------------------------------------------------- header size
sk = connect()
sk.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\nConnection: close\r\n\r\n")
data = read_all(sk, 10)
sk.close()
body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
try:
    doc = json.loads(body)
except ValueError:
    doc = None
check("40 KiB of headers -> 431 with a JSON error", data.startswith(b"HTTP/1.1 431") and isinstance(doc, dict)
      and "error" in doc, repr(data[:200]))

# ---------------------------------------------------------------- 5. half-closed client
# long enough (EOS banned) that the server looks at the socket while generating
s, d = post({"prompt": "Once", "max_tokens": 400, "logit_bias": {"2": -100}}, half_close=True)
check("half-closed client (shutdown SHUT_WR after the request) gets its 200", s == 200
      and isinstance(d, dict) and "choices" in d, f"{s} {str(d)[:200]}")

# ---------------------------------------------------------------- 7. seed range, JSON
for seed in (-9.3e18, 1.9e19, -9223372036854777856):
    s, d = post(dict(SMALL, seed=seed))
    check(f"seed {seed:g} -> 400 naming 'seed'", s == 400 and param_of(d) == "seed", f"{s} {d}")
for seed in (-9223372036854775808, 18446744073709549568, 0):
    s, d = post(dict(SMALL, seed=seed))
    check(f"seed {seed} (in range) -> 200", s == 200, f"{s} {d}")
s, d = raw_request(b'{"prompt": "The moon", "max_tokens": 1} {"x": 1}')
check("trailing data after the JSON object -> 400", s == 400, f"{s} {d}")
s, d = raw_request(b'{"prompt": "The moon", "max_tokens": 1}garbage')
check("trailing garbage after the JSON object -> 400", s == 400, f"{s} {d}")
s, d = raw_request(b'{"prompt": "The moon", "max_tokens": 1}\r\n  \n')
check("trailing whitespace after the JSON object -> 200", s == 200, f"{s} {d}")
s, d = raw_request(b'{"prompt": "The moon\\u0000ignored", "max_tokens": 1}')
check("\\u0000 inside a string -> 400", s == 400, f"{s} {d}")
s, d = raw_request(b'{"prompt": "The moon\x00ignored", "max_tokens": 1}')
check("raw NUL byte in the body -> 400", s == 400, f"{s} {d}")
s, d = raw_request(b'{"prompt": "a \\\\u0000 is text here", "max_tokens": 1}')
check("an escaped backslash before u0000 is plain text -> 200", s == 200, f"{s} {d}")

# ---------------------------------------------------------------- auth
for auth, want in ((f"bearer {KEY}", 200), (f"BEARER {KEY}", 200), (f"Bearer   {KEY}", 200),
                   (f"Bearer {KEY}x", 401), (f"Bearer {KEY[:-1]}", 401), ("Bearer ", 401),
                   (f"Basic {KEY}", 401), (f"Bearer{KEY}", 401), ("", 401)):
    s, d = post(SMALL, auth=auth if auth else "")
    check(f"Authorization '{auth}' -> {want}", s == want, f"{s} {str(d)[:120]}")
s, _ = get("/health")
check("/health needs no key", s == 200)
s, _ = get("/v1/models")
check("/v1/models needs the key", s == 401)
s, _ = get("/v1/models", auth=f"bearer {KEY}")
check("/v1/models with the key -> 200", s == 200)

s, d = post(SMALL)
check("server alive at the end", s == 200, f"{s} {d}")
print(f"python: {failed} failed")
