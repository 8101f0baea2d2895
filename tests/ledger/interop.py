"""The ledger checked by Go's reference transparency-log code (golang.org/x/mod/sumdb).

    scripts/setup-go-env && python3 tests/ledger/interop.py --warden PATH/TO/warden
    python3 tests/ledger/interop.py --reference   # the same checks on a ledger written by Go

Builds tests/ledger/gocheck (GOPATH mode against Debian's golang-golang-x-mod-dev, nothing
downloaded), grows a ledger with `warden ledger append` to 1, 255, 256, 257 and 70,000
entries (the last in one --from-jsonl call: level-1 and level-2 tiles), and at each size has
Go verify the signed checkpoint, every hash tile and every entry of every entry bundle,
inclusion proofs (first, last, tile boundaries, random) and consistency proofs from every
checkpoint saved earlier. Then forgeries that Go must reject: a byte flipped in an entry
bundle (full and partial), in a hash tile, in a proof; a checkpoint of another ledger, one
re-signed by that ledger's key or by another key of the same name, one with a changed root
or size; a proof for the wrong index. Each check prints `ok` or `FAIL`; the last line is `N passed, M failed`.

--reference runs everything against `gocheck reference`, the contract's ledger commands
written with tlog and note alone: it shows the checks accept Go's own log and reject its
forgeries, whatever warden does. Standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
# Debian's golang-golang-x-mod-dev puts golang.org/x/mod under this GOPATH (see scripts/setup-go-env).
GOPATH = "/usr/share/gocode"
BIG = 70_000  # > 65,536 = 256 * 256: the tree has level-2 tiles
BOUNDARIES = [255, 256, 511, 512, 65_535, 65_536]
# gocheck's reasons for rejecting a hash tile: authentication by tlog.TileHashReader, a leaf
# hash that is not the entry's, or the tile recomputed from the entries.
TILE_ERRORS = ("inconsistent tile", "is not the leaf hash", "differs from the tile computed")

passed = 0
failed = 0


class Abort(Exception):
    pass


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}".rstrip(), flush=True)
    return cond


def run(cmd, stdin=None):
    p = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def build_gocheck(out):
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOPROXY="off", GOFLAGS="",
               GOCACHE=str(REPO / ".cache" / "go-build"))
    try:
        p = subprocess.run(["go", "build", "-o", str(out), "."], cwd=REPO / "tests/ledger/gocheck",
                           env=env, capture_output=True, text=True)
        rc, err = p.returncode, p.stderr
    except FileNotFoundError:
        rc, err = 1, "no go on PATH: run scripts/setup-go-env"
    if not check("gocheck builds with Go's sumdb/note and sumdb/tlog", rc == 0, err):
        raise Abort


class Ledger:
    def __init__(self, warden, data_dir):
        self.warden, self.data = warden, data_dir
        self.dir = data_dir / "ledger"

    def run(self, *args, stdin=None):
        return run([*self.warden, "--data-dir", self.data, "ledger", *args], stdin)

    def must(self, name, *args, stdin=None):
        """A command that must succeed: a failure is reported and ends the run."""
        rc, out, err = self.run(*args, stdin=stdin)
        if not check(name, rc == 0, f"(exit {rc}) {err.strip()}"):
            raise Abort
        return out

    def must_json(self, name, *args, stdin=None):
        """JSON lines, one object each."""
        out = self.must(name, *args, stdin=stdin)
        try:
            return [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        except ValueError as e:
            check(f"{name}: JSON output", False, f"{e}: {out[:200]!r}")
            raise Abort

    def must_one(self, name, *args):
        """One JSON object, and warden's output as it is, for Go to read."""
        out = self.must(name, *args)
        try:
            return json.loads(out), out
        except ValueError as e:
            check(f"{name}: one JSON object", False, f"{e}: {out[:200]!r}")
            raise Abort


class Go:
    def __init__(self, exe):
        self.exe = exe

    def ok(self, name, *args):
        rc, out, err = run([self.exe, *args])
        return check(name, rc == 0, err.strip())

    def rejects(self, name, expect, *args):
        """Go must fail, and for the expected reason (a phrase, or one of several, of its error)."""
        rc, out, err = run([self.exe, *args])
        expect = (expect,) if isinstance(expect, str) else expect
        return check(name, rc != 0 and any(e in err for e in expect),
                     f"exit {rc}, wanted an error with {expect!r}: {(err or out.decode()).strip()}")


def bundle_entries(path):
    """(offset, length) of each entry in an entry bundle: 2-byte big-endian length prefixes."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append((pos + 2, n))
        pos += 2 + n
    return out


def tile_path(level, n, width):
    """C2SP tlog-tiles: N in 3-digit groups with an x prefix on all but the last, .p/W if partial."""
    s = f"{n % 1000:03d}"
    while n >= 1000:
        n //= 1000
        s = f"x{n % 1000:03d}/{s}"
    return f"tile/{level}/{s}" + (f".p/{width}" if width < 256 else "")


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def record_line(i):
    rec = {"kind": ["inference.request", "release.admitted", "admin.test"][i % 3], "actor": f"actor-{i:06d}"}
    if i % 2:
        rec["subject"] = f"model-{i % 7}"
    if i % 5 == 0:
        rec["attrs"] = {"route": "/v1/chat", "n": str(i)}
    return json.dumps(rec)


def verify_size(go, led, tmp, size, saved, receipts, rng):
    """Everything Go can check about the ledger at this size; saves its checkpoint."""
    tag = f"[{size}]"
    cp = led.must(f"{tag} ledger checkpoint", "checkpoint")
    check(f"{tag} `ledger checkpoint` prints the stored note", cp == (led.dir / "checkpoint").read_bytes())
    check(f"{tag} checkpoint size line", cp.decode().split("\n")[1:2] == [str(size)], repr(cp[:120]))
    go.ok(f"{tag} Go: note, every hash tile and every entry verified (tiles)", "tiles", led.dir)

    vkey = led.dir / "vkey"
    indexes = {0, size - 1, *(b for b in BOUNDARIES if b < size), *rng.sample(range(size), min(size, 4))}
    for i in sorted(indexes):
        p, raw = led.must_one(f"{tag} ledger proof --index {i}", "proof", "--index", i, "--json")
        pf = tmp / f"proof-{size}-{i}.json"
        pf.write_bytes(raw)
        go.ok(f"{tag} Go: inclusion of entry {i} (CheckRecord)", "inclusion", vkey, pf)
        receipt = receipts[i] if i < len(receipts) else {}
        check(f"{tag} proof leaf_hash of {i} is the append receipt's", p.get("leaf_hash") == receipt.get("leaf_hash"))

    cpf = tmp / f"checkpoint-{size}"
    cpf.write_bytes(cp)
    saved.append((size, cpf))
    for old, f in saved:
        _, raw = led.must_one(f"{tag} ledger consistency --from {old}", "consistency", "--from", f, "--json")
        pf = tmp / f"consistency-{old}-{size}.json"
        pf.write_bytes(raw)
        go.ok(f"{tag} Go: consistency {old} -> {size} (CheckTree)", "consistency", vkey, pf, f)


def append_receipts(name, receipts, got, first, count):
    ok = len(got) == count and all(
        r.get("index") == first + k and isinstance(r.get("tree_size"), int) and r["tree_size"] > r["index"]
        and len(base64.b64decode(r.get("leaf_hash", ""))) == 32 for k, r in enumerate(got))
    check(f"{name}: one receipt per record, indexes {first}..{first + count - 1}", ok, repr(got[:2]))
    receipts.extend(got)


def tile_forgeries(go, led, size):
    """Flip one byte, expect Go to reject the ledger, flip it back."""
    tag = f"[{size}]"
    targets = []
    bundles = led.dir / "tile" / "entries"
    if size >= 256:
        off, n = bundle_entries(bundles / "000")[100]
        targets.append(("entry 100 in a full entry bundle", bundles / "000", off + n // 2, "is not the leaf hash"))
    if size % 256:
        rel = tile_path("entries", size // 256, size % 256)[len("tile/entries/"):]
        off, n = bundle_entries(bundles / rel)[-1]
        targets.append((f"entry {size - 1} in the partial entry bundle", bundles / rel, off + n // 2, "is not the leaf hash"))
    for level in range(3):
        width = min(256, size >> (8 * level))
        if width == 0:
            continue
        t = led.dir / tile_path(level, 0, width)
        targets.append((f"hash 0 in level-{level} tile {tile_path(level, 0, width)}", t, 5, TILE_ERRORS))
    for what, path, off, expect in targets:
        flip(path, off)
        try:
            go.rejects(f"{tag} Go rejects a flipped byte in {what}", expect, "tiles", led.dir)
        finally:
            flip(path, off)
    go.ok(f"{tag} Go: the restored ledger verifies again", "tiles", led.dir)


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent_forgery(go, led):
    """Entry 100 rewritten together with its leaf hash in tile/0/000 and that tile's hash in
    tile/1/000, so that only the level-2 tile above disagrees. tlog.TileHashReader returns
    tile/1/000 unauthenticated for a tree of 70,000 (see checkTiles): the recomputation must catch it."""
    saved = {p: p.read_bytes() for p in (led.dir / "tile/entries/000", led.dir / "tile/0/000", led.dir / "tile/1/000")}
    bundle, t0, t1 = (bytearray(b) for b in saved.values())
    off, n = bundle_entries(led.dir / "tile/entries/000")[100]
    bundle[off + n // 2] ^= 1
    t0[100 * 32:101 * 32] = hashlib.sha256(b"\x00" + bytes(bundle[off:off + n])).digest()
    level = [bytes(t0[k:k + 32]) for k in range(0, len(t0), 32)]
    while len(level) > 1:
        level = [node(level[k], level[k + 1]) for k in range(0, len(level), 2)]
    t1[0:32] = level[0]
    try:
        for (path, _), data in zip(saved.items(), (bundle, t0, t1)):
            path.write_bytes(bytes(data))
        go.rejects("Go rejects entry 100 rewritten with its leaf hash and level-1 hash", "give the root", "tiles", led.dir)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def checkpoint_forgeries(go, led, other, tmp):
    cpf = led.dir / "checkpoint"
    good = cpf.read_bytes()
    text, sigs = good.decode().split("\n\n", 1)
    origin, size, root = text.split("\n")[:3]
    forged_root = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()

    def resigned(*skey):
        rc, out, err = run([go.exe, "resign", cpf, *skey])
        key = "the other ledger's key" if skey else "a new key"
        return out if check(f"gocheck resigns the checkpoint with {key}", rc == 0, err) else None

    # The other ledger's private key, where warden keeps it (docs/ledger.md).
    other_key = other.data / "keys" / "ledger.key"
    by_other = resigned(other_key)
    cases = [
        ("another ledger's checkpoint", (other.dir / "checkpoint").read_bytes()),
        ("the checkpoint re-signed by another ledger's key", by_other),
        ("the checkpoint re-signed by a new key named like the ledger", resigned()),
        ("a changed root", f"{origin}\n{size}\n{forged_root}\n\n{sigs}".encode()),
        ("a changed size", f"{origin}\n{int(size) + 1}\n{root}\n\n{sigs}".encode()),
    ]
    for what, forged in cases:
        if forged is None:
            continue
        cpf.write_bytes(forged)
        try:
            go.rejects(f"Go rejects {what}", "checkpoint signature", "tiles", led.dir)
        finally:
            cpf.write_bytes(good)
    if by_other is not None:
        # Trusting the other key does not help: its name is not this checkpoint's origin.
        (tmp / "vkey-a").write_bytes((led.dir / "vkey").read_bytes())
        cpf.write_bytes(by_other)
        shutil.copy(other.dir / "vkey", led.dir / "vkey")
        try:
            go.rejects("Go rejects the checkpoint re-signed by another ledger's key, with that key trusted",
                       "is not the key name", "tiles", led.dir)
        finally:
            cpf.write_bytes(good)
            (led.dir / "vkey").write_bytes((tmp / "vkey-a").read_bytes())
    go.rejects("Go rejects the checkpoint with the other ledger's verifier key", "checkpoint signature",
               "inclusion", other.dir / "vkey", tmp / "proof-good.json")
    go.ok("Go: the restored checkpoint verifies again", "tiles", led.dir)


def proof_forgeries(go, led, other, tmp, size, receipts):
    vkey = led.dir / "vkey"
    i = 12_345 if size > 12_345 else size // 2
    p, _ = led.must_one(f"ledger proof --index {i}", "proof", "--index", i, "--json")
    f = tmp / "proof-negative.json"

    def rejects(what, expect, q, kind="inclusion", *extra):
        f.write_text(json.dumps(q))
        go.rejects(f"Go rejects {what}", expect, kind, vkey, f, *extra)

    f.write_text(json.dumps(p))
    go.ok(f"Go: inclusion of entry {i} before the forgeries", "inclusion", vkey, f)
    for k in (0, len(p["proof"]) // 2, len(p["proof"]) - 1):
        h = bytearray(base64.b64decode(p["proof"][k]))
        h[0] ^= 1
        rejects(f"an inclusion proof with hash {k} of {len(p['proof'])} changed", "invalid transparency proof",
                {**p, "proof": p["proof"][:k] + [base64.b64encode(bytes(h)).decode()] + p["proof"][k + 1:]})
    rejects(f"the proof of {i} presented for index {i + 1}", "invalid transparency proof", {**p, "index": i + 1})
    rejects(f"the proof of {i} with the leaf hash of {i + 1}", "invalid transparency proof",
            {**p, "leaf_hash": receipts[i + 1]["leaf_hash"]})
    text, sigs = p["checkpoint"].split("\n\n", 1)
    lines = text.split("\n")
    lines[2] = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    rejects("an inclusion proof whose checkpoint root was changed", "checkpoint signature",
            {**p, "checkpoint": "\n".join(lines) + "\n\n" + sigs})
    (tmp / "proof-good.json").write_text(json.dumps(p))  # for the other-key check in checkpoint_forgeries

    old = tmp / "checkpoint-257"
    c, _ = led.must_one("ledger consistency --from 257", "consistency", "--from", old, "--json")
    for k in (0, len(c["proof"]) - 1):
        h = bytearray(base64.b64decode(c["proof"][k]))
        h[-1] ^= 1
        rejects(f"a consistency proof with hash {k} of {len(c['proof'])} changed", "invalid transparency proof",
                {**c, "proof": c["proof"][:k] + [base64.b64encode(bytes(h)).decode()] + c["proof"][k + 1:]},
                "consistency")
    forged_old = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    rejects("a consistency proof from a different old root", "invalid transparency proof",
            {**c, "old_root": forged_old}, "consistency")
    rejects("a consistency proof for a different old size", "invalid transparency proof",
            {**c, "old_size": c["old_size"] + 1}, "consistency")
    rejects("a consistency proof against another ledger's old checkpoint", "checkpoint signature",
            c, "consistency", other.dir / "checkpoint")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--warden", help="the warden binary")
    who.add_argument("--reference", action="store_true", help="check Go's own ledger instead")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"random indexes with --seed {seed}")
    rng = random.Random(seed)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="warden-ledger-"))
    try:
        gocheck = tmp / "gocheck"
        build_gocheck(gocheck)
        go = Go(gocheck)
        warden = [args.warden] if args.warden else [gocheck, "reference"]
        led, other = Ledger(warden, tmp / "a"), Ledger(warden, tmp / "b")

        out = led.must("ledger init --origin", "init", "--origin", "interop.example/ledger-a")
        vkey = (led.dir / "vkey").read_text().strip()
        check("init prints the verifier key stored in ledger/vkey", out.decode().strip() == vkey, out.decode())
        check("the verifier key is named after the origin", vkey.startswith("interop.example/ledger-a+"), vkey)
        other.must("second ledger init, another origin", "init", "--origin", "interop.example/ledger-b")
        other.must("second ledger append", "append", "--kind", "admin.test", "--actor", "bob")

        saved, receipts = [], []
        got = led.must_json("append --kind --actor --subject --attr --json", "append", "--kind", "admin.test",
                            "--actor", "actor-000000", "--subject", "model-0", "--attr", "k=v",
                            "--attr", "stage=admit", "--json")
        append_receipts("append", receipts, got, 0, 1)
        verify_size(go, led, tmp, 1, saved, receipts, rng)
        tile_forgeries(go, led, 1)

        batches = [(1, 255, "file"), (255, 256, "stdin"), (256, 257, "file"), (257, BIG, "file")]
        for first, end, how in batches:
            lines = "".join(record_line(i) + "\n" for i in range(first, end)).encode()
            name = f"append --from-jsonl ({how}) {end - first} records"
            if how == "stdin":
                got = led.must_json(name, "append", "--from-jsonl", "-", "--json", stdin=lines)
            else:
                src = tmp / "records.jsonl"
                src.write_bytes(lines)
                got = led.must_json(name, "append", "--from-jsonl", src, "--json")
            append_receipts(name, receipts, got, first, end - first)
            verify_size(go, led, tmp, end, saved, receipts, rng)
            tile_forgeries(go, led, end)
        consistent_forgery(go, led)

        # The entries hold what was appended (the encoding is warden's: only look for the actor).
        for i in (0, 256, BIG - 1):
            bundle = led.dir / tile_path("entries", i // 256, min(256, BIG - i // 256 * 256))
            off, n = bundle_entries(bundle)[i % 256]
            data = bundle.read_bytes()
            check(f"entry {i} holds the appended record", f"actor-{i:06d}".encode() in data[off:off + n])

        proof_forgeries(go, led, other, tmp, BIG, receipts)
        checkpoint_forgeries(go, led, other, tmp)
    except Abort:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
