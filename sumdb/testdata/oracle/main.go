// Command oracle answers questions about checksum database data with the
// go command's own note and tlog packages, for sumdb/tests/go_oracle.rs.
//
// Usage: oracle SIGNER-KEY N VERIFIER-KEY NOTE-FILE
//
// It builds a log of N records "record I\n", and prints (as JSON) the tree
// hash of every size, record and tree proofs, the tiles of height 2 for the
// whole log, and the tree head note signed with SIGNER-KEY; it also opens
// the note in NOTE-FILE with VERIFIER-KEY and reports its text.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type output struct {
	TreeHashes  []string            `json:"tree_hashes"`
	RecordProof map[string][]string `json:"record_proofs"`
	TreeProof   map[string][]string `json:"tree_proofs"`
	Tiles       map[string][]byte   `json:"tiles"`
	SignedHead  string              `json:"signed_head"`
	OpenedText  string              `json:"opened_text"`
	OpenError   string              `json:"open_error"`
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: oracle SIGNER-KEY N VERIFIER-KEY NOTE-FILE")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	check(err)

	var hashes []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	out := output{RecordProof: map[string][]string{}, TreeProof: map[string][]string{}, Tiles: map[string][]byte{}}
	for i := int64(0); i < n; i++ {
		h, err := tlog.StoredHashes(i, []byte(fmt.Sprintf("record %d\n", i)), reader)
		check(err)
		hashes = append(hashes, h...)
		th, err := tlog.TreeHash(i+1, reader)
		check(err)
		out.TreeHashes = append(out.TreeHashes, th.String())
	}
	for t := int64(1); t <= n; t += 7 {
		for i := int64(0); i < t; i += 3 {
			p, err := tlog.ProveRecord(t, i, reader)
			check(err)
			out.RecordProof[fmt.Sprintf("%d/%d", t, i)] = strs(p)
		}
		for old := int64(1); old <= t; old += 5 {
			p, err := tlog.ProveTree(t, old, reader)
			check(err)
			out.TreeProof[fmt.Sprintf("%d/%d", t, old)] = strs(p)
		}
	}
	for _, tile := range tlog.NewTiles(2, 0, n) {
		data, err := tlog.ReadTileData(tile, reader)
		check(err)
		out.Tiles[tile.Path()] = data
	}

	signer, err := note.NewSigner(os.Args[1])
	check(err)
	th, err := tlog.TreeHash(n, reader)
	check(err)
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: th}))}, signer)
	check(err)
	out.SignedHead = string(msg)

	verifier, err := note.NewVerifier(os.Args[3])
	check(err)
	data, err := os.ReadFile(os.Args[4])
	check(err)
	opened, err := note.Open(data, note.VerifierList(verifier))
	if err != nil {
		out.OpenError = err.Error()
	} else {
		out.OpenedText = opened.Text
	}

	enc := json.NewEncoder(os.Stdout)
	check(enc.Encode(out))
}

func strs(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.String())
	}
	return out
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
