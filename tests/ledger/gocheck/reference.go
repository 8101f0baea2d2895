package main

// The ledger commands of warden's contract (init, append, checkpoint, proof, consistency),
// written with tlog and note alone:
//
//	gocheck reference --data-dir D ledger init|append|checkpoint|proof|consistency [OPTIONS]
//
// `interop.py --reference` runs every check against it instead of warden, which shows
// that the checks pass on a log made by Go's reference code and fail on its forgeries,
// independently of warden. Its signing key is in D/keys/ledger.key, as warden's is
// (docs/ledger.md). It recomputes all hashes from the entry bundles on each run: simple,
// and fast enough for tests.

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type refLedger struct {
	memTree
	dir    string
	signer note.Signer
	vkey   string
}

func loadLedger(dir string) (*refLedger, error) {
	skey, err := os.ReadFile(keyPath(dir))
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, err
	}
	vkey, err := os.ReadFile(filepath.Join(dir, "vkey"))
	if err != nil {
		return nil, err
	}
	l := &refLedger{dir: dir, signer: signer, vkey: string(vkey)}
	_, tree, err := readCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	for n := int64(0); n<<tileHeight < tree.N; n++ {
		w := tree.N - n<<tileHeight
		if w > 1<<tileHeight {
			w = 1 << tileHeight
		}
		b, err := os.ReadFile(filepath.Join(dir, c2spPath(tlog.Tile{H: tileHeight, L: -1, N: n, W: int(w)})))
		if err != nil {
			return nil, err
		}
		entries, err := splitBundle(b)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := l.add(e); err != nil {
				return nil, err
			}
		}
	}
	if l.root() != tree {
		return nil, errors.New("entries do not match the checkpoint")
	}
	return l, nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// publish writes the tiles that changed since a tree of size old, then the signed checkpoint.
func (l *refLedger) publish(old int64) error {
	tree := l.root()
	hr := l.hashReader()
	for _, t := range neededTiles(old, tree.N) {
		data, err := tlog.ReadTileData(t, hr)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(l.dir, c2spPath(t)), data); err != nil {
			return err
		}
		if t.L == 0 {
			var bundle []byte
			for _, e := range l.entries[t.N<<tileHeight : t.N<<tileHeight+int64(t.W)] {
				bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(e)))
				bundle = append(bundle, e...)
			}
			t.L = -1
			if err := writeFile(filepath.Join(l.dir, c2spPath(t)), bundle); err != nil {
				return err
			}
		}
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.signer.Name(), tree.N, b64(tree.Hash))
	msg, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(l.dir, "checkpoint"), msg)
}

func keyPath(ledgerDir string) string {
	return filepath.Join(filepath.Dir(ledgerDir), "keys", "ledger.key")
}

type record struct {
	Kind    string            `json:"kind"`
	Actor   string            `json:"actor"`
	Subject string            `json:"subject,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

func printJSON(v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}

func reference(args []string) error {
	dataDir := "warden-data"
	if len(args) >= 2 && args[0] == "--data-dir" {
		dataDir, args = args[1], args[2:]
	}
	if len(args) < 2 || args[0] != "ledger" {
		return errors.New("usage: gocheck reference [--data-dir D] ledger COMMAND [OPTIONS]")
	}
	dir := filepath.Join(dataDir, "ledger")
	opts := map[string][]string{}
	asJSON := false
	for rest := args[2:]; len(rest) > 0; rest = rest[1:] {
		if rest[0] == "--json" {
			asJSON = true
			continue
		}
		if !strings.HasPrefix(rest[0], "--") || len(rest) < 2 {
			return fmt.Errorf("bad option %q", rest[0])
		}
		opts[rest[0][2:]] = append(opts[rest[0][2:]], rest[1])
		rest = rest[1:]
	}
	opt := func(k string) string {
		if v := opts[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}

	if args[1] == "init" {
		origin := opt("origin")
		if origin == "" {
			origin = "reference.invalid/ledger"
		}
		if _, err := os.Stat(keyPath(dir)); err == nil {
			return errors.New("ledger exists")
		}
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return err
		}
		if err := writeFile(keyPath(dir), []byte(skey+"\n")); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, "vkey"), []byte(vkey+"\n")); err != nil {
			return err
		}
		signer, _ := note.NewSigner(skey)
		if err := (&refLedger{dir: dir, signer: signer}).publish(0); err != nil {
			return err
		}
		fmt.Println(vkey)
		return nil
	}

	l, err := loadLedger(dir)
	if err != nil {
		return err
	}
	tree := l.root()
	switch args[1] {
	case "append":
		var recs []record
		if src := opt("from-jsonl"); src != "" {
			var r io.Reader = os.Stdin
			if src != "-" {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "" {
					continue
				}
				var rec record
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					return err
				}
				recs = append(recs, rec)
			}
			if err := sc.Err(); err != nil {
				return err
			}
		} else {
			rec := record{Kind: opt("kind"), Actor: opt("actor"), Subject: opt("subject"), Attrs: map[string]string{}}
			for _, kv := range opts["attr"] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--attr %q is not K=V", kv)
				}
				rec.Attrs[k] = v
			}
			recs = append(recs, rec)
		}
		for _, rec := range recs {
			if rec.Kind == "" || rec.Actor == "" {
				return errors.New("a record needs kind and actor")
			}
			e, _ := json.Marshal(rec)
			if err := l.add(e); err != nil {
				return err
			}
		}
		if err := l.publish(tree.N); err != nil {
			return err
		}
		for i := range recs {
			n := tree.N + int64(i)
			if asJSON {
				receipt := struct {
					Index    int64     `json:"index"`
					LeafHash tlog.Hash `json:"leaf_hash"`
					TreeSize int64     `json:"tree_size"`
				}{n, l.hashes[tlog.StoredHashIndex(0, n)], int64(len(l.entries))}
				if err := printJSON(receipt); err != nil {
					return err
				}
			}
		}
		return nil
	case "checkpoint":
		b, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if err == nil {
			_, err = os.Stdout.Write(b)
		}
		return err
	case "proof":
		n, err := strconv.ParseInt(opt("index"), 10, 64)
		if err != nil || n < 0 || n >= tree.N {
			return fmt.Errorf("no entry %q in a ledger of %d", opt("index"), tree.N)
		}
		p, err := tlog.ProveRecord(tree.N, n, l.hashReader())
		if err != nil {
			return err
		}
		cp, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if err != nil {
			return err
		}
		return printJSON(map[string]interface{}{
			"index": n, "tree_size": tree.N, "leaf_hash": l.hashes[tlog.StoredHashIndex(0, n)],
			"proof": append([]tlog.Hash{}, p...), "checkpoint": string(cp),
		})
	case "consistency":
		msg, err := os.ReadFile(opt("from"))
		if err != nil {
			return err
		}
		_, old, err := openCheckpoint(l.vkey, msg)
		if err != nil {
			return err
		}
		if old.N < 1 || old.N > tree.N {
			return fmt.Errorf("old size %d, ledger size %d", old.N, tree.N)
		}
		if h, err := tlog.TreeHash(old.N, l.hashReader()); err != nil || h != old.Hash {
			return errors.New("the old checkpoint is not a prefix of this ledger")
		}
		p, err := tlog.ProveTree(tree.N, old.N, l.hashReader())
		if err != nil {
			return err
		}
		cp, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if err != nil {
			return err
		}
		return printJSON(map[string]interface{}{
			"old_size": old.N, "old_root": old.Hash, "new_size": tree.N, "new_root": tree.Hash,
			"proof": append([]tlog.Hash{}, p...), "checkpoint": string(cp),
		})
	}
	return fmt.Errorf("unknown ledger command %q", args[1])
}
