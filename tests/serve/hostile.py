#!/usr/bin/env python3
"""hostile.py - many hostile connections at a running `frugal serve` while a
normal client keeps asking (python3 stdlib only, asyncio).

Usage: hostile.py PORT PID N [sanitized]
  the server runs with --header-timeout 3 --max-conns-per-ip 64 (its connection
  limit is 1024). N hostile connections (default 1000), spread over 20 loopback
  source addresses (127.0.0.10-29) so the per-address limit is not what stops
  them, in five kinds of N/5 each:
    idle          connect and send nothing;
    slow          drip a request header one byte every 0.5 s;
    oversized     a 64 KiB header line, or a Content-Length of 100 MB;
    malformed     a garbage request line, a bad JSON body, a truncated body;
    disconnecting send half a request and reset, or start a stream and reset.
  Meanwhile one client from 127.0.0.1 sends completions back to back.
Checks: every normal request is answered 200 (latency printed); the server's
open file descriptors return to their baseline and its RSS to within 10 % of it
once the storm is over; it is alive. Prints PASS/FAIL lines and figures.
"""
import asyncio
import json
import os
import socket
import struct
import sys
import time

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
SANITIZED = len(sys.argv) > 4 and sys.argv[4] == "sanitized"
HOST = "127.0.0.1"
failed = 0


def check(name, cond, why=""):
    global failed
    print(f"PASS {name}" if cond else f"FAIL {name}: {why}", flush=True)
    if not cond:
        failed += 1


def n_fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def src(i):
    return f"127.0.0.{10 + i % 20}"


async def open_from(i):
    return await asyncio.wait_for(asyncio.open_connection(HOST, PORT, local_addr=(src(i), 0)), 20)


def reset(writer):
    sk = writer.get_extra_info("socket")
    try:
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.close()


async def drain_until_closed(reader, limit):
    """Read until the server closes (True) or `limit` seconds pass (False)."""
    end = time.time() + limit
    try:
        while time.time() < end:
            data = await asyncio.wait_for(reader.read(65536), max(0.1, end - time.time()))
            if not data:
                return True
    except (asyncio.TimeoutError, ConnectionError, OSError):
        return True if not isinstance(sys.exc_info()[1], asyncio.TimeoutError) else False
    return False


stats = {"refused": 0, "closed_by_server": 0, "held_open": 0, "errors": 0}


async def hostile(i, kind, hold, connected, go):
    try:
        reader, writer = await open_from(i)
    except (OSError, asyncio.TimeoutError):
        stats["refused"] += 1
        connected.append(i)
        return
    connected.append(i)
    await go.wait()  # all N are open before any of them acts
    try:
        if kind == "idle":
            closed = await drain_until_closed(reader, hold)
        elif kind == "slow":
            closed = False
            head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
            for b in head:
                writer.write(bytes([b]))
                await writer.drain()
                if await drain_until_closed(reader, 0.5):
                    closed = True
                    break
        elif kind == "oversized":
            if i % 2:
                writer.write(b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 65536 + b"\r\n\r\n")
            else:
                writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"{" * 4096)
            await writer.drain()
            closed = await drain_until_closed(reader, hold)
        elif kind == "malformed":
            body = [b"\x00\xff garbage\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":[}",
                    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"messages\": 1}"][i % 3]
            writer.write(body)
            await writer.drain()
            closed = await drain_until_closed(reader, hold)
        else:  # disconnecting
            if i % 2:
                writer.write(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
            else:
                b = json.dumps({"prompt": "Once", "max_tokens": 200, "stream": True, "logit_bias": {"2": -100}}).encode()
                writer.write(b"POST /v1/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
            await writer.drain()
            await asyncio.sleep(0.2 + (i % 10) * 0.1)
            reset(writer)
            stats["closed_by_server"] += 0
            return
        stats["closed_by_server" if closed else "held_open"] += 1
    except (ConnectionError, OSError):
        stats["closed_by_server"] += 1
    except asyncio.TimeoutError:
        stats["errors"] += 1
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def normal_client(stop, lat, bad):
    body = json.dumps({"prompt": "The moon", "max_tokens": 4, "temperature": 0}).encode()
    while not stop.is_set():
        t0 = time.time()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 10)
            writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            data = await asyncio.wait_for(reader.read(-1), 60)
            writer.close()
            if data.startswith(b"HTTP/1.1 200"):
                lat.append(time.time() - t0)
            else:
                bad.append(data[:80])
        except (OSError, asyncio.TimeoutError) as e:
            bad.append(repr(e))
        await asyncio.sleep(0.05)


async def main():
    # baseline after a warm-up
    stop0, lat0, bad0 = asyncio.Event(), [], []
    warm = asyncio.create_task(normal_client(stop0, lat0, bad0))
    await asyncio.sleep(1.5)
    stop0.set()
    await warm
    await asyncio.sleep(0.5)
    fd0, rss0 = n_fds(), rss_kib()
    print(f"baseline fds {fd0} rss_kib {rss0} (warm-up requests {len(lat0)})", flush=True)

    stop, lat, bad = asyncio.Event(), [], []
    normal = asyncio.create_task(normal_client(stop, lat, bad))
    kinds = ["idle", "slow", "oversized", "malformed", "disconnecting"]
    t0 = time.time()
    tasks, connected, go = [], [], asyncio.Event()
    for i in range(N):
        tasks.append(asyncio.create_task(hostile(i, kinds[i % 5], 12, connected, go)))
        if i % 50 == 49:
            await asyncio.sleep(0.02)  # a burst, not one SYN flood the backlog would drop
    while len(connected) < N and time.time() - t0 < 30:
        await asyncio.sleep(0.05)
    # a client's connect completes in the kernel's backlog before the server accepts it:
    # wait (bounded) for the server to hold every one (a loaded or sanitized server is slow)
    want = fd0 + N - stats["refused"]
    end = time.time() + 20
    peak_fds = n_fds()
    while peak_fds < want and time.time() < end:
        await asyncio.sleep(0.1)
        peak_fds = max(peak_fds, n_fds())  # every hostile connection open at once
    go.set()
    await asyncio.gather(*tasks)
    storm = time.time() - t0
    stop.set()
    await normal
    print(f"storm: {N} hostile connections over {storm:.1f} s; server fds at peak {peak_fds}; "
          f"{stats}", flush=True)
    check("normal requests answered during the storm", len(lat) >= 5 and not bad,
          f"{len(lat)} ok, {len(bad)} failed: {bad[:3]}")
    if lat:
        s = sorted(lat)
        print(f"normal latency: n {len(s)} median {s[len(s) // 2] * 1000:.0f} ms p95 "
              f"{s[int(len(s) * 0.95)] * 1000:.0f} ms max {s[-1] * 1000:.0f} ms (baseline median "
              f"{sorted(lat0)[len(lat0) // 2] * 1000:.0f} ms)", flush=True)
    check(f"peak: the server held all {N} hostile connections at once", peak_fds >= fd0 + N - stats["refused"]
          and stats["refused"] == 0, f"{peak_fds} fds, {stats['refused']} refused")
    check("every hostile connection was closed by the server or the client", stats["held_open"] == 0, str(stats))
    # the server drops the rest within its timeouts; then counts must come back
    end = time.time() + 30
    while time.time() < end and n_fds() > fd0:
        await asyncio.sleep(0.2)
    fd1 = n_fds()
    await asyncio.sleep(1)
    rss1 = rss_kib()
    print(f"after: fds {fd1} rss_kib {rss1} ({(rss1 - rss0) * 100.0 / rss0:+.1f} %)", flush=True)
    check("open file descriptors back to the baseline", fd1 == fd0, f"{fd0} -> {fd1}")
    if not SANITIZED:
        check("RSS within 10 % of the baseline", rss1 <= rss0 * 1.10, f"{rss0} -> {rss1} KiB")
    try:
        r, w = await asyncio.open_connection(HOST, PORT)
        w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(-1), 10)
        w.close()
        check("server alive after the storm", data.startswith(b"HTTP/1.1 200"), repr(data[:60]))
    except (OSError, asyncio.TimeoutError) as e:
        check("server alive after the storm", False, repr(e))
    print(f"python: {failed} failed", flush=True)


asyncio.run(main())
