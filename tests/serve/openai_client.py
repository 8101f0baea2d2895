#!/usr/bin/env python3
"""The official `openai` Python SDK against `warden serve`, over TLS with a Warden API key:
model listing, a chat completion, a streamed chat completion, an embedding, and the SDK's
own errors for a refused key and a model out of scope. The model server is
fake_upstream.py (a real one cannot run here). Also checks that `openssl s_client -tls1_2`
cannot connect while TLS 1.2 is off.

Usage: openai_client.py --warden PATH/TO/warden
"""
import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

HERE = Path(__file__).resolve().parent


def run(warden, env, *args):
    out = subprocess.run([warden, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"warden {' '.join(args)} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", required=True)
    warden = ap.parse_args().warden

    work = Path(tempfile.mkdtemp(prefix="warden-serve-"))
    data = work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_DATA"] = str(data)
    init = json.loads(run(warden, env, "init", "--json").splitlines()[-1])
    token = work / "admin.token"
    token.write_text(init["token"])
    token.chmod(0o600)
    env["WARDEN_TOKEN_FILE"] = str(token)

    (data / "tls").mkdir()
    cert = data / "tls" / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(data / "tls" / "key.pem"), "-out", str(cert)],
        check=True, capture_output=True)

    upstream = subprocess.Popen([sys.executable, str(HERE / "fake_upstream.py")], stdout=subprocess.PIPE, text=True)
    server = None
    try:
        up_port = int(upstream.stdout.readline())
        with open(data / "warden.toml", "a") as f:
            f.write(f"""
[[serve.upstreams]]
name = "llm"
url = "http://127.0.0.1:{up_port}"
protocol = "openai"
models = ["chat-1", "secret-model"]
""")
        key = json.loads(run(warden, env, "apikey", "create", "--principal", "sdk", "--models", "chat*", "--json"))["key"]
        log = open(work / "serve.log", "w")
        server = subprocess.Popen([warden, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                                  stderr=log, text=True)
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])

        ctx = ssl.create_default_context(cafile=str(cert))
        client = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=key,
                               http_client=openai.DefaultHttpxClient(verify=ctx), max_retries=0)

        models = [m.id for m in client.models.list()]
        assert models == ["chat-1"], models

        reply = client.chat.completions.create(model="chat-1", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello from the fake upstream", reply

        pieces = []
        for chunk in client.chat.completions.create(model="chat-1", stream=True,
                                                     messages=[{"role": "user", "content": "hi"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        assert len(pieces) == 5 and "".join(pieces) == "Hello from the fake upstream", pieces

        emb = client.embeddings.create(model="chat-1", input="hi")
        assert len(emb.data[0].embedding) == 3, emb

        try:
            client.chat.completions.create(model="secret-model", messages=[{"role": "user", "content": "hi"}])
            sys.exit("a model out of the key's scope was served")
        except openai.PermissionDeniedError as e:
            assert e.status_code == 403

        bad = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key="wdn_0123456789abcdef_" + "A" * 43,
                            http_client=openai.DefaultHttpxClient(verify=ctx), max_retries=0)
        try:
            bad.models.list()
            sys.exit("an unknown key was accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401

        # TLS 1.3 only by default: a TLS 1.2 client cannot connect.
        s12 = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True)
        assert s12.returncode != 0 and "Cipher is ECDHE" not in s12.stdout, s12.stdout
        s13 = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True)
        assert "TLSv1.3" in s13.stdout, s13.stdout

        server.terminate()
        assert server.wait(timeout=20) == 0
        server = None
        log.close()
        secret = key[21:]
        assert secret not in (work / "serve.log").read_text(), "the API key is in the server's log"
        run(warden, env, "ledger", "verify")
        print("openai SDK against warden serve: models, chat, streamed chat, embeddings, 401, 403, TLS 1.2 refused: ok")
    finally:
        if server is not None:
            server.kill()
        upstream.kill()


if __name__ == "__main__":
    main()
