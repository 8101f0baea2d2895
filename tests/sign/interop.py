"""Interoperability of `warden sign|verify` with the reference tool, model_signing 1.1.1.

Run with the venv of scripts/setup-sign-env:
    .venv-sign/bin/python tests/sign/interop.py --warden PATH/TO/warden

Both directions, for P-256, P-384 and P-521: a bundle made by `model_signing sign key`
verifies with `warden verify`, and a bundle made by `warden sign` verifies with
`model_signing verify key`. Tampering (a flipped byte, an added, removed or renamed file, an
edited payload, the wrong key) fails in both tools. Also: certificate mode both ways, an
encrypted key, sharded and BLAKE3 bundles written by the model_signing API, and the
signature file inside the model, and the demo model's shipped signature. Each check prints `ok` or `FAIL`; the last line is
`N passed, M failed`.
"""

import argparse
import base64
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = pathlib.Path(sys.executable).parent
MODEL_SIGNING = str(HERE / "model_signing")

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def run(*cmd, env=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout + p.stderr


def make_model(root: pathlib.Path):
    """Names chosen to exercise component-wise ordering, nesting, git paths, empty files."""
    if root.exists():
        shutil.rmtree(root)
    (root / "a").mkdir(parents=True)
    (root / "sub" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a" / "c").write_bytes(b"y\n")
    (root / "a-b").write_bytes(b"z\n")
    (root / "a.b").write_bytes(b"q\n")
    (root / "config.json").write_text('{"hidden_size": 8}\n')
    (root / "sub" / "deep" / "tokenizer.json").write_text('{"v": 1}\n')
    (root / "empty").write_bytes(b"")
    (root / "m\u00f6del card.md").write_text("# card\n")
    (root / "weights.bin").write_bytes(os.urandom(3 << 20))
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".gitignore").write_text("*.tmp\n")


def warden_verify(warden, model, sig, key):
    return run(warden, "verify", model, "--signature", sig, "--key", key)


def ms_verify(model, sig, key):
    return run(MODEL_SIGNING, "verify", "key", model, "--signature", sig, "--public_key", key)


def tamper_cases(model: pathlib.Path):
    """Each yields (name, mutate) where mutate changes a fresh copy of the model."""

    def flip(m):
        p = m / "weights.bin"
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0x01
        p.write_bytes(bytes(b))

    def add(m):
        (m / "sub" / "extra.py").write_text("import os\n")

    def remove(m):
        (m / "a" / "c").unlink()

    def rename(m):
        (m / "config.json").rename(m / "config2.json")

    return [("flipped byte", flip), ("added file", add), ("removed file", remove), ("renamed file", rename)]


def edit_payload(sig_in: pathlib.Path, sig_out: pathlib.Path):
    """Change one resource digest in the signed payload, keep the signature."""
    b = json.loads(sig_in.read_text())
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    st["predicate"]["resources"][0]["digest"] = "00" * 32
    b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    sig_out.write_text(json.dumps(b))


def keypair(tmp, curve_name, curve):
    """An EC key in traditional SEC1 PEM from `cryptography` (what openssl ecparam gives)."""
    k = ec.generate_private_key(curve)
    priv = tmp / f"py-{curve_name}.pem"
    pub = tmp / f"py-{curve_name}.pub"
    priv.write_bytes(
        k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def key_mode(warden, tmp):
    curves = [("p256", ec.SECP256R1()), ("p384", ec.SECP384R1()), ("p521", ec.SECP521R1())]
    for curve_name, curve in curves:
        model = tmp / f"model-{curve_name}"
        make_model(model)
        wkey = tmp / f"w-{curve_name}.pem"
        code, out = run(warden, "keygen", "--curve", curve_name, "--out", wkey, "--force")
        check(f"{curve_name}: warden keygen", code == 0, out)
        wpub = pathlib.Path(str(wkey) + ".pub")
        check(f"{curve_name}: private key mode 0600", (wkey.stat().st_mode & 0o777) == 0o600)
        pkey, ppub = keypair(tmp, curve_name, curve)

        # warden signs (its own key) -> model_signing verifies.
        wsig = tmp / f"w-{curve_name}.sig"
        code, out = run(warden, "sign", model, "--key", wkey, "--signature", wsig)
        check(f"{curve_name}: warden sign", code == 0, out)
        code, out = ms_verify(model, wsig, wpub)
        check(f"{curve_name}: model_signing verifies warden's bundle", code == 0, out)
        code, out = warden_verify(warden, model, wsig, wpub)
        check(f"{curve_name}: warden verifies its own bundle", code == 0, out)

        # model_signing signs (its own key, and warden's key) -> warden verifies.
        psig = tmp / f"p-{curve_name}.sig"
        code, out = run(MODEL_SIGNING, "sign", "key", model, "--private_key", pkey, "--signature", psig)
        check(f"{curve_name}: model_signing sign", code == 0, out)
        code, out = warden_verify(warden, model, psig, ppub)
        check(f"{curve_name}: warden verifies model_signing's bundle", code == 0, out)
        psig2 = tmp / f"p2-{curve_name}.sig"
        code, out = run(MODEL_SIGNING, "sign", "key", model, "--private_key", wkey, "--signature", psig2)
        check(f"{curve_name}: model_signing signs with a warden key", code == 0, out)
        code, out = warden_verify(warden, model, psig2, wpub)
        check(f"{curve_name}: warden verifies it", code == 0, out)
        # warden signs with the SEC1 key made by cryptography.
        wsig2 = tmp / f"w2-{curve_name}.sig"
        code, out = run(warden, "sign", model, "--key", pkey, "--signature", wsig2)
        check(f"{curve_name}: warden signs with a SEC1 key from cryptography", code == 0, out)
        code, out = ms_verify(model, wsig2, ppub)
        check(f"{curve_name}: model_signing verifies it", code == 0, out)

        # Both bundles describe the same files: the same root digest.
        def subject(sig):
            b = json.loads(sig.read_text())
            st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
            return st["subject"][0]["digest"]["sha256"]

        check(f"{curve_name}: same root digest from both tools", subject(wsig) == subject(psig))
        code, out = run(warden, "digest", model)
        check(f"{curve_name}: warden digest prints it", code == 0 and subject(psig) in out, out)

        # Tampering fails in both tools, for bundles from both tools.
        for name, mutate in tamper_cases(model):
            copy = tmp / f"tampered-{curve_name}"
            if copy.exists():
                shutil.rmtree(copy)
            shutil.copytree(model, copy)
            mutate(copy)
            for who, sig, pub in [("warden", wsig, wpub), ("model_signing", psig, ppub)]:
                code, out = warden_verify(warden, copy, sig, pub)
                check(f"{curve_name}: {name}, {who}'s bundle: warden refuses (exit 2)", code == 2, out)
                code, out = ms_verify(copy, sig, pub)
                check(f"{curve_name}: {name}, {who}'s bundle: model_signing refuses", code != 0, out)
        for who, sig, pub in [("warden", wsig, wpub), ("model_signing", psig, ppub)]:
            edited = tmp / f"edited-{who}-{curve_name}.sig"
            edit_payload(sig, edited)
            code, out = warden_verify(warden, model, edited, pub)
            check(f"{curve_name}: edited payload, {who}'s bundle: warden refuses", code == 2 and "bad signature" in out, out)
            code, out = ms_verify(model, edited, pub)
            check(f"{curve_name}: edited payload, {who}'s bundle: model_signing refuses", code != 0, out)
            other = ppub if pub == wpub else wpub
            code, out = warden_verify(warden, model, sig, other)
            check(f"{curve_name}: wrong key, {who}'s bundle: warden refuses", code == 2 and "wrong signer" in out, out)
            code, out = ms_verify(model, sig, other)
            check(f"{curve_name}: wrong key, {who}'s bundle: model_signing refuses", code != 0, out)

        # Tampering names what differs.
        copy = tmp / f"named-{curve_name}"
        shutil.copytree(model, copy)
        for _, mutate in tamper_cases(copy):
            mutate(copy)
        code, out = run(warden, "verify", copy, "--signature", psig, "--key", ppub, "--json")
        v = json.loads(out.splitlines()[-1]) if code == 2 else {}
        check(
            f"{curve_name}: the verdict names modified, added and removed files",
            v.get("modified") == ["weights.bin"]
            and v.get("added") == ["config2.json", "sub/extra.py"]
            and v.get("removed") == ["a/c", "config.json"],
            out,
        )


def signature_inside_and_encrypted_key(warden, tmp):
    model = tmp / "model-inside"
    make_model(model)
    key = tmp / "enc.pem"
    env = dict(os.environ, WARDEN_TEST_PASS="s3cret passphrase")
    code, out = run(warden, "keygen", "--out", key, "--passphrase-env", "WARDEN_TEST_PASS", "--force", env=env)
    check("encrypted keygen", code == 0 and "ENCRYPTED PRIVATE KEY" in key.read_text(), out)
    pub = pathlib.Path(str(key) + ".pub")
    sig = model / "model.sig"
    code, out = run(warden, "sign", model, "--key", key, "--signature", sig, "--passphrase-env", "WARDEN_TEST_PASS", env=env)
    check("warden signs with an encrypted key, signature inside the model", code == 0, out)
    code, out = run(warden, "sign", model, "--key", key, "--signature", sig)
    check("an encrypted key without passphrase is refused (exit 1)", code == 1 and "encrypted" in out, out)
    bad = dict(os.environ, WARDEN_TEST_PASS="wrong")
    code, out = run(warden, "sign", model, "--key", key, "--signature", sig, "--passphrase-env", "WARDEN_TEST_PASS", env=bad)
    check("a wrong passphrase is refused (exit 1)", code == 1 and "passphrase" in out, out)
    code, out = ms_verify(model, sig, pub)
    check("model_signing verifies it (the signature file is ignored)", code == 0, out)
    # model_signing 1.1.1's `--password` passes a str where `cryptography` wants bytes and
    # fails for every encrypted key; its API takes bytes.
    import model_signing

    try:
        model_signing.signing.Config().use_elliptic_key_signer(
            private_key=key, password=b"s3cret passphrase"
        ).set_hashing_config(
            model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"])
        ).sign(model, sig)
        ok, err = True, ""
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        ok, err = False, repr(e)
    check("model_signing (API) signs with warden's encrypted key", ok, err)
    code, out = warden_verify(warden, model, sig, pub)
    check("warden verifies it (the signature file is ignored)", code == 0, out)


def make_ca(tmp, leaf_usage=True, expired=False):
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, issuer_key, ca, usage):
        past = expired and not ca
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=60 if past else 1))
            .not_valid_after(now - datetime.timedelta(days=30) if past else now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            b = b.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        elif usage:
            b = b.add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        else:
            b = b.add_extension(
                x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True
            )
        return b.sign(issuer_key, hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256())

    root_k = ec.generate_private_key(ec.SECP384R1())
    int_k = ec.generate_private_key(ec.SECP256R1())
    leaf_k = ec.generate_private_key(ec.SECP256R1())
    root = cert("Warden Test Root", "Warden Test Root", root_k, root_k, True, True)
    inter = cert("Warden Test Intermediate", "Warden Test Root", int_k, root_k, True, True)
    leaf = cert("model-publisher@example.com", "Warden Test Intermediate", leaf_k, int_k, False, leaf_usage)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    d = tmp / ("pki" + ("" if leaf_usage else "-nousage") + ("-expired" if expired else ""))
    d.mkdir(exist_ok=True)
    (d / "root.pem").write_bytes(pem(root))
    (d / "inter.pem").write_bytes(pem(inter))
    (d / "leaf.pem").write_bytes(pem(leaf))
    (d / "leaf.key").write_bytes(
        leaf_k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    other = ec.generate_private_key(ec.SECP256R1())
    other_root = cert("Other Root", "Other Root", other, other, True, True)
    (d / "other-root.pem").write_bytes(pem(other_root))
    return d


def certificate_mode(warden, tmp):
    model = tmp / "model-pki"
    make_model(model)
    d = make_ca(tmp)
    wsig = tmp / "w-pki.sig"
    code, out = run(warden, "sign", model, "--key", d / "leaf.key", "--signing-cert", d / "leaf.pem",
                    "--cert-chain", d / "inter.pem", "--signature", wsig)
    check("certificate mode: warden sign", code == 0, out)
    code, out = run(MODEL_SIGNING, "verify", "certificate", model, "--signature", wsig, "--certificate_chain", d / "root.pem")
    check("certificate mode: model_signing verifies warden's bundle", code == 0, out)
    psig = tmp / "p-pki.sig"
    code, out = run(MODEL_SIGNING, "sign", "certificate", model, "--private_key", d / "leaf.key",
                    "--signing_certificate", d / "leaf.pem", "--certificate_chain", d / "inter.pem", "--signature", psig)
    check("certificate mode: model_signing sign", code == 0, out)
    for who, sig in [("warden", wsig), ("model_signing", psig)]:
        code, out = run(warden, "verify", model, "--signature", sig, "--cert-chain", d / "root.pem")
        check(f"certificate mode: warden verifies {who}'s bundle", code == 0 and "model-publisher@example.com" in out, out)
        code, out = run(warden, "verify", model, "--signature", sig, "--cert-chain", d / "other-root.pem")
        check(f"certificate mode: another root is refused ({who})", code == 2 and "untrusted" in out, out)
        code, out = run(MODEL_SIGNING, "verify", "certificate", model, "--signature", sig, "--certificate_chain", d / "other-root.pem")
        check(f"certificate mode: model_signing refuses another root ({who})", code != 0, out)
    n = make_ca(tmp, leaf_usage=False)
    nsig = tmp / "n-pki.sig"
    run(MODEL_SIGNING, "sign", "certificate", model, "--private_key", n / "leaf.key",
        "--signing_certificate", n / "leaf.pem", "--certificate_chain", n / "inter.pem", "--signature", nsig)
    code, out = run(warden, "verify", model, "--signature", nsig, "--cert-chain", n / "root.pem")
    check("certificate mode: a leaf without signing usage is refused", code == 2 and "digitalSignature" in out, out)
    code, out = run(MODEL_SIGNING, "verify", "certificate", model, "--signature", nsig, "--certificate_chain", n / "root.pem")
    check("certificate mode: model_signing refuses it too", code != 0, out)
    e = make_ca(tmp, expired=True)
    esig = tmp / "e-pki.sig"
    run(MODEL_SIGNING, "sign", "certificate", model, "--private_key", e / "leaf.key",
        "--signing_certificate", e / "leaf.pem", "--certificate_chain", e / "inter.pem", "--signature", esig)
    code, out = run(warden, "verify", model, "--signature", esig, "--cert-chain", e / "root.pem")
    # model_signing checks validity at the leaf's notBefore and accepts it (docs/signing.md).
    check("certificate mode: an expired leaf is refused", code == 2 and "expired" in out, out)


def api_serializations(warden, tmp):
    """Shards (float shard_size as model_signing writes it) and BLAKE3, via the Python API."""
    import model_signing

    model = tmp / "model-api"
    make_model(model)
    key, pub = keypair(tmp, "api", ec.SECP256R1())
    for name, hc in [
        ("shards of 1 MiB", model_signing.hashing.Config().use_shard_serialization(shard_size=1 << 20)),
        ("blake3", model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake3")),
    ]:
        sig = tmp / f"api-{name.replace(' ', '-')}.sig"
        model_signing.signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(hc).sign(model, sig)
        code, out = warden_verify(warden, model, sig, pub)
        check(f"API {name}: warden verifies model_signing's bundle", code == 0, out)
    for name, extra in [("shards", ["--shard-size", str(1 << 20)]), ("blake3", ["--hash", "blake3"])]:
        sig = tmp / f"w-api-{name}.sig"
        code, out = run(warden, "sign", model, "--key", key, "--signature", sig, *extra)
        check(f"warden sign --{name}", code == 0, out)
        try:
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)
            ok, err = True, ""
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            ok, err = False, repr(e)
        check(f"API {name}: model_signing verifies warden's bundle", ok, err)


def demo_model(warden, tmp):
    """The demo model's shipped signature (examples/models/iris/model.sig, over a directory
    holding model.onnx alone, as `warden quickstart` admits it) verifies with both tools
    against the shipped publisher key, and fails both once the model changes."""
    iris = pathlib.Path(__file__).resolve().parents[2] / "examples" / "models" / "iris"
    model = tmp / "demo" / "iris"
    model.mkdir(parents=True)
    shutil.copy(iris / "model.onnx", model / "model.onnx")
    sig, key = iris / "model.sig", iris / "demo-publisher.pub"
    for tool, verify in (("warden", lambda: warden_verify(warden, model, sig, key)),
                         ("model_signing", lambda: ms_verify(model, sig, key))):
        code, out = verify()
        check(f"demo model signature verifies with {tool}", code == 0, out)
    data = bytearray((model / "model.onnx").read_bytes())
    data[-1] ^= 1
    (model / "model.onnx").write_bytes(bytes(data))
    for tool, verify in (("warden", lambda: warden_verify(warden, model, sig, key)),
                         ("model_signing", lambda: ms_verify(model, sig, key))):
        check(f"demo model, one byte changed, fails with {tool}", verify()[0] != 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="warden-sign-interop.") as t:
        tmp = pathlib.Path(t)
        key_mode(args.warden, tmp)
        signature_inside_and_encrypted_key(args.warden, tmp)
        certificate_mode(args.warden, tmp)
        api_serializations(args.warden, tmp)
        demo_model(args.warden, tmp)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
