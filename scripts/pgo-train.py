#!/usr/bin/env python3
"""The training load of scripts/build-production: a mix of what a gateway serves, sent to a
profile-collecting `warden serve` so that the optimised build is laid out for real traffic,
not for one benchmark request. Standard library only.

    pgo-train.py PORT KEY_FILE REQUESTS

Four threads, each on its own keep-alive TLS connection, send REQUESTS in all, drawn from a
fixed mix: chat completions (one in ten streamed), completions, embeddings, the model list,
KServe v2 inference and metadata, and refusals (no key, a wrong key, malformed JSON, a
model outside the key's scope, a body that breaks the input checks). Every answer must
have the status its kind expects, or the script exits non-zero: a profile of a broken
server is worse than none.
"""
import http.client
import json
import random
import ssl
import sys
import threading

THREADS = 4


def chat(stream=False):
    body = {"model": "chat-1", "messages": [{"role": "user", "content": "Say hello in five words."}],
            "max_tokens": 16}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


INFER = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()

# (weight, method, path, body, auth: "key" / "none" / "wrong", status expected)
MIX = [
    (60, "POST", "/v1/chat/completions", chat(), "key", 200),
    (7, "POST", "/v1/chat/completions", chat(stream=True), "key", 200),
    (5, "POST", "/v1/completions",
     json.dumps({"model": "chat-1", "prompt": "Once upon a time", "max_tokens": 8}).encode(), "key", 200),
    (5, "POST", "/v1/embeddings", json.dumps({"model": "chat-1", "input": "a sentence"}).encode(), "key", 200),
    (3, "GET", "/v1/models", None, "key", 200),
    (8, "POST", "/v2/models/iris/infer", INFER, "key", 200),
    (2, "GET", "/v2/models/iris", None, "key", 200),
    (2, "POST", "/v1/chat/completions", chat(), "none", 401),
    (2, "POST", "/v1/chat/completions", chat(), "wrong", 401),
    (2, "POST", "/v1/chat/completions", b'{"model": "chat-1", "messages": [', "key", 400),
    (2, "POST", "/v1/chat/completions",
     json.dumps({"model": "nothing-here", "messages": [{"role": "user", "content": "hi"}]}).encode(), "key", 403),
    (2, "POST", "/v1/chat/completions",
     json.dumps({"model": "chat-1", "messages": [{"role": "user", "content": "bad\u0000byte"}]}).encode(), "key", 400),
]


def worker(port, key, count, seed, failures):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    rng = random.Random(seed)
    weights = [m[0] for m in MIX]
    for _ in range(count):
        _, method, path, body, auth, want = rng.choices(MIX, weights)[0]
        headers = {"Content-Type": "application/json"}
        if auth == "key":
            headers["Authorization"] = "Bearer " + key
        elif auth == "wrong":
            headers["Authorization"] = "Bearer wk_" + "0" * 40
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != want:
            failures.append(f"{method} {path}: {answer.status}, expected {want}")
            return
        if answer.getheader("Connection", "").lower() == "close":
            conn.close()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: pgo-train.py PORT KEY_FILE REQUESTS")
    port, key_file, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with open(key_file) as f:
        key = f.read().strip()
    failures = []
    threads = [threading.Thread(target=worker, args=(port, key, total // THREADS, i, failures))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("training load failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
