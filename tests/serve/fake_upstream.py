#!/usr/bin/env python3
"""A tiny stand-in for an upstream model server (vLLM-like OpenAI API and a KServe v2
server), for the gateway's tests: a real model server cannot run here. Standard library
only. Prints its port on stdout, then serves until killed.

    fake_upstream.py [--tls CERT KEY [--client-ca CA]]

With --tls it serves HTTPS (TLS 1.2 and 1.3) with that certificate and key, and with
--client-ca it requires a client certificate that CA signed (an upstream that wants mutual
TLS).

Models: any name answers; "boom" fails with a 500 whose body holds internal details (which
the gateway must never pass on); "slow" answers after 3 seconds; "dribble" sends a chat
answer's head after 1 second and its body a second later; "stall" streams its first
chunk, then nothing for 60 seconds; "big" answers a chat
request with 16 MiB of content (BIG_CONTENT bytes). A chat request asking
`logprobs: true` is answered as a self-describing server would (see `internals`).
"""
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG_CONTENT = 16 << 20
INTERNAL = "Traceback: upstream-internal-detail at /srv/model/secret.py line 42"


def internals(answer, req):
    """With `logprobs: true` asked, a chat answer or chunk also carries what the gateway must
    strip or rewrite: log-probabilities, the server's build in `system_fingerprint`, and its
    model file's path as `model`."""
    if req.get("logprobs"):
        answer["system_fingerprint"] = "fp-internal-build"
        answer["model"] = f"/srv/models/{answer['model']}.gguf"
        for c in answer["choices"]:
            c["logprobs"] = {"content": [{"token": "Hello", "logprob": -0.01, "bytes": [72, 101, 108, 108, 111],
                                          "top_logprobs": []}]}
    return answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def model_checks(self, model):
        if model == "boom":
            self.send_json(500, {"error": INTERNAL})
            return False
        if model == "slow":
            time.sleep(3)
        return True

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            model = parts[2]
            if not self.model_checks(model):
                return
            if parts[-1] == "ready":
                self.send_json(200, {"name": model, "ready": True})
            else:
                self.send_json(200, {
                    "name": model, "versions": ["1"], "platform": "fake",
                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                    "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
                })
            return
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        req = self.read_json()
        saw_auth = self.headers.get("Authorization") is not None
        if self.path == "/v1/chat/completions":
            model = req.get("model")
            if not self.model_checks(model):
                return
            words = ["Hello", " from", " the", " fake", " upstream"]
            if model == "dribble" and not req.get("stream"):
                body = json.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                                   "model": model, "choices": []}).encode()
                time.sleep(1)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                time.sleep(1)
                self.wfile.write(body)
                return
            if model == "big":
                words = ["x" * BIG_CONTENT]
            if req.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, w in enumerate(words):
                    chunk = {
                        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                        "model": model,
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": w} if i == 0 else {"content": w},
                                     "finish_reason": None}],
                    }
                    self.chunk(f"data: {json.dumps(internals(chunk, req))}\n\n".encode())
                    time.sleep(60 if model == "stall" else 0.05)
                done = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.chunk(f"data: {json.dumps(internals(done, req))}\n\n".encode())
                self.chunk(b"data: [DONE]\n\n")
                self.chunk(b"")
                return
            self.send_json(200, internals({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
                "x_saw_authorization": saw_auth,
            }, req))
        elif self.path == "/v1/completions":
            if not self.model_checks(req.get("model")):
                return
            self.send_json(200, {"id": "cmpl-fake", "object": "text_completion", "created": 0,
                                 "model": req.get("model"),
                                 "choices": [{"index": 0, "text": " completed", "finish_reason": "stop"}]})
        elif self.path == "/v1/embeddings":
            if not self.model_checks(req.get("model")):
                return
            self.send_json(200, {"object": "list", "model": req.get("model"),
                                 "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]})
        elif self.path.startswith("/v2/models/") and self.path.endswith("/infer"):
            model = self.path.split("/")[3]
            if not self.model_checks(model):
                return
            n = len(req.get("inputs", [{}])[0].get("data", []))
            self.send_json(200, {"model_name": model, "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [n], "data": [1] * n}]})
        else:
            self.send_json(404, {"error": "not found"})

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def tls_context(args):
    """The TLS server context the arguments ask for, or None for plain HTTP."""
    if "--tls" not in args:
        return None
    at = args.index("--tls")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args[at + 1], args[at + 2])
    if "--client-ca" in args:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args[args.index("--client-ca") + 1])
    return ctx


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = tls_context(sys.argv[1:])
    if ctx is not None:
        # Each connection's handshake happens as it is accepted; a failed one (a client
        # without the right certificate) is dropped by the server loop.
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    # A caller that went away (a cut stream, a gateway timeout) is not an error here.
    server.handle_error = lambda request, address: None
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
