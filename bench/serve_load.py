#!/usr/bin/env python3
"""serve_load.py - aggregate throughput of `frugal serve` under N concurrent streams.

usage: bench/serve_load.py PORT N [MAX_TOKENS]
Starts N streaming /v1/completions requests at once (distinct seeds, EOS banned via
logit_bias so every stream generates MAX_TOKENS tokens) and reports aggregate tok/s
(all generated tokens / wall time), median time to first token, and p50/p99 of the
gaps between consecutive tokens of a stream. Standard library only; loopback only.
"""
import http.client
import json
import statistics
import sys
import threading
import time


def one(port, seed, max_tokens, out):
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": max_tokens, "stream": True,
                       "seed": seed, "temperature": 0.8, "logit_bias": {"2": -100}})
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    stamps = []
    for line in resp:
        line = line.strip()
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            doc = json.loads(line[6:])
            if doc.get("choices") and doc["choices"][0].get("text"):
                stamps.append(time.monotonic())
    conn.close()
    out.append((t0, stamps))


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    out = []
    threads = [threading.Thread(target=one, args=(port, 1000 + i, max_tokens, out)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    tokens = sum(len(s) for _, s in out)
    ttft = [s[0] - start for start, s in out if s]
    gaps = sorted(b - a for _, s in out for a, b in zip(s, s[1:]))
    p = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))] if gaps else float("nan")
    print(f"streams {n}: {tokens} tokens in {wall:.2f} s = {tokens / wall:.2f} tok/s aggregate, "
          f"TTFT median {statistics.median(ttft) * 1000:.0f} ms, "
          f"inter-token p50 {p(0.5) * 1000:.0f} ms p99 {p(0.99) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
