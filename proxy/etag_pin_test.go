package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/transform"
)

// pinnedSource serves data/images under identities that do not depend on
// the machine (no inode, ctime or mtime), so the ETags of a table of URLs
// can be pinned in a test and compared on every machine.
type pinnedSource struct{ root string }

func (p pinnedSource) Stat(_ context.Context, rel string) (origin.Original, error) {
	fi, err := os.Stat(filepath.Join(p.root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return origin.Original{}, origin.ErrMissing
	}
	if err != nil {
		return origin.Original{}, err
	}
	return origin.Original{Rel: rel, Size: fi.Size(), ModTime: time.Unix(1_700_000_000, 0).UTC(),
		Identity: "pin:" + rel + "|" + strconv.FormatInt(fi.Size(), 10)}, nil
}

func (p pinnedSource) Open(ctx context.Context, rel string) (origin.Original, origin.Body, error) {
	o, err := p.Stat(ctx, rel)
	if err != nil {
		return o, nil, err
	}
	f, err := os.Open(filepath.Join(p.root, rel))
	return o, f, err
}

func (p pinnedSource) Kind() string { return "pinned" }

// TestETagsArePinned pins the ETag and the bytes of a table of URLs, one
// for each parameter and URL form, passthrough included, with the default
// settings: CDNs keep these for a year, so a change here must be a decision
// recorded in CHANGELOG.md, never the side effect of a refactoring.
func TestETagsArePinned(t *testing.T) {
	cfg := defaultTestConfig("../data/images")
	cfg.Controls.EnableRRoutes = true
	cfg.Controls.Presets = "thumb=size:150,format:webp,quality:60"
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	c := cache.New(nil, m)
	s, err := New(cfg, Deps{Sources: origin.Chain{pinnedSource{"../data/images"}}, Engine: transform.New(transform.DefaultConfig()),
		Cache: c, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, m: m}
	cases := []struct {
		target  string
		headers []string
		etag    string
		body    string // sha-256 of the body, first 16 hex digits
	}{
		{"/rocket.jpg", nil, `"153bb80e755742a0"`, "c2dd0de7c538df8d"},
		{"/rocket.jpg?size=400", nil, `"43647277e0da05ea"`, "cc48b47d31fdfbb2"},
		{"/rocket.jpg?size=400&format=webp", nil, `"3db50f71fdc7fbd4"`, "5e1f177ecbccbbd2"},
		{"/rocket.jpg?size=400&format=webp&dpr=2", nil, `"43ef3b63e7963e6a"`, "4bc0c81c8fc9641d"},
		{"/rocket.jpg?size=300&format=jpeg", nil, `"ca1eb62401258946"`, "12c40a1e8f1cce87"},
		{"/rocket.jpg?size=300&format=png", nil, `"5393d86e035ead73"`, "691bf06e3cc9774d"},
		{"/rocket.jpg?size=300&format=avif", nil, `"e511f142ad9410d7"`, "e6ca21c4a7c2c6a7"},
		{"/rocket.jpg?size=300&format=gif", nil, `"aa0dc112063fc375"`, "88788ca240051a31"},
		{"/rocket.jpg?size=300&format=webp&quality=50", nil, `"42c86a1032c90dd4"`, "c8ab89ac36869c32"},
		{"/rocket.jpg?size=300&format=webp&resize_algorithm=lanczos3", nil, `"97f58b24bbfdf3cb"`, "4e095706ae4b5930"},
		{"/rocket.jpg?size=300&format=webp&resize_algorithm=thumbnail", nil, `"8a37ffd4280519ad"`, "e291fb025a283e44"},
		{"/rocket.jpg?size=300&format=auto", []string{"Accept", "image/avif,image/webp,*/*"}, `"0017f027264136d5"`, "e6ca21c4a7c2c6a7"},
		{"/rocket.jpg?size=300&format=auto", []string{"Accept", "image/webp,*/*"}, `"2af7562c82e98fb8"`, "d6e50edead28047b"},
		{"/rocket.jpg?size=300&format=auto", []string{"Accept", "*/*"}, `"d998b047a09cdbc1"`, "12c40a1e8f1cce87"},
		{"/rocket.jpg?size=200&format=webp", []string{"Sec-CH-DPR", "2"}, `"3db50f71fdc7fbd4"`, "5e1f177ecbccbbd2"},
		{"/rocket.jpg?preset=thumb", nil, `"9b1e235aa85848dd"`, "ea32f4a74f278efe"},
		{"/r/variants/200/phone/astronaut-alpha.png", nil, `"6800110dd93280f6"`, "299bbb7857bce096"},
		{"/coffee-progressive.jpg?size=400&format=webp", nil, `"a776bb4958519635"`, "889096c3ca43db9e"},
		{"/coffee-progressive.jpg?size=1200&format=webp", nil, `"852cf35015fff074"`, "7c257aecaa7b11d8"},
		{"/hubble_deep_field.jpg?size=200&format=webp", nil, `"ad1ebb9f3be93d9f"`, "d18b79c013e78c7b"},
		{"/astronaut.png?size=200", nil, `"a79650f51216e1d0"`, "9c92f81dad9a7960"},
		{"/coffee.avif?size=200&format=jpeg", nil, `"aebed1c1f938cedb"`, "bee5d0f2330d0ab9"},
		{"/astronaut-animated.gif?size=100", nil, `"395d3670bf1e9694"`, "4a7b45a1205d2f2b"},
		{"/variants/badge.svg?size=64&format=png", nil, `"1b5bae7e7271f67d"`, "79d5dbe6e6024bcd"},
	}
	for _, c := range cases {
		resp, body := ts.get(t, c.target, c.headers...)
		if resp.StatusCode != 200 {
			t.Errorf("%s %v: status %d", c.target, c.headers, resp.StatusCode)
			continue
		}
		sum := sha256.Sum256(body)
		etag, digest := resp.Header.Get("ETag"), hex.EncodeToString(sum[:8])
		if etag != c.etag || digest != c.body {
			t.Errorf("%s %v: ETag %s body %s, want %s %s", c.target, c.headers, etag, digest, c.etag, c.body)
		}
	}
}
