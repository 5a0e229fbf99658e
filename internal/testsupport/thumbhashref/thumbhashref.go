// Package thumbhashref runs ThumbHash's reference implementation (the
// thumbhash npm package, its file vendored beside this one by `make
// thumbhash-reference`) with node, so tests can check a Go encoder's
// bytes against it and decode hashes with the reference decoder.
package thumbhashref

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed thumbhash.js
var reference []byte

// runner reads a JSON request on stdin and writes the answer: encode
// {w, h, rgba} to a hash, or decode {hash} to {w, h, rgba}.
const runner = `import * as th from './thumbhash.mjs';
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(job => {
    if (job.hash) {
      const img = th.thumbHashToRGBA(Uint8Array.from(Buffer.from(job.hash, 'base64')));
      return {w: img.w, h: img.h, rgba: Buffer.from(img.rgba).toString('base64')};
    }
    const hash = th.rgbaToThumbHash(job.w, job.h, Uint8Array.from(Buffer.from(job.rgba, 'base64')));
    return {hash: Buffer.from(hash).toString('base64')};
  });
  process.stdout.write(JSON.stringify(out));
});
`

// Job is one request to the reference: Hash set decodes it; otherwise W,
// H and RGBA are encoded. Its answer fills the other fields.
type Job struct {
	W    int    `json:"w,omitempty"`
	H    int    `json:"h,omitempty"`
	RGBA []byte `json:"rgba,omitempty"`
	Hash []byte `json:"hash,omitempty"`
}

// Run sends every job to the reference in one node process and returns
// the answers in order.
func Run(t testing.TB, jobs []Job) []Job {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node runs ThumbHash's reference implementation: `make test` installs the nodejs package")
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{"thumbhash.mjs": reference, "run.mjs": []byte(runner)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "run.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node thumbhash reference: %v: %s", err, stderr.String())
	}
	var answers []Job
	if err := json.Unmarshal(out, &answers); err != nil {
		t.Fatalf("node thumbhash reference answered %q: %v", out, err)
	}
	return answers
}
