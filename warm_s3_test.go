package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

var warmBucketSeq atomic.Int64

// s3Warm is a bucket with originals, and the settings of a server (and a
// warm) reading them with no local root and an S3 result tier.
type s3Warm struct {
	srv    *miniotest.Server
	bucket string
	env    []string
}

// newS3Warm puts cat.jpg (900×600), photos/logo.png (240×400) and a text
// file under prefix in a fresh bucket.
func newS3Warm(t *testing.T, srv *miniotest.Server, prefix string, extra ...string) s3Warm {
	t.Helper()
	w := s3Warm{srv: srv, bucket: srv.Bucket(t, fmt.Sprintf("warm-%d", warmBucketSeq.Add(1)))}
	srv.Put(t, w.bucket, prefix+"cat.jpg", gradient(t, 900, 600, false))
	srv.Put(t, w.bucket, prefix+"photos/logo.png", gradient(t, 240, 400, true))
	srv.Put(t, w.bucket, prefix+"notes.txt", []byte("not an image"))
	w.env = append([]string{
		"IMAGE_PROXY_ROOT_PATH=" + filepath.Join(t.TempDir(), "no-root"),
		"IMAGE_PROXY_S3_ENDPOINT=" + srv.Endpoint, "IMAGE_PROXY_S3_BUCKET=" + w.bucket,
		"IMAGE_PROXY_S3_ACCESS_KEY=" + srv.AccessKey, "IMAGE_PROXY_S3_SECRET_KEY=" + srv.SecretKey,
		"IMAGE_PROXY_S3_PREFIX=" + prefix, "IMAGE_PROXY_S3_RESULT_PREFIX=results/",
		"IMAGE_PROXY_PRESETS=thumb=size:80,format:png;card=size:150",
	}, extra...)
	return w
}

// object reads key's bytes and description.
func (w s3Warm) object(t *testing.T, key string) ([]byte, minio.ObjectInfo) {
	t.Helper()
	obj, err := w.srv.Client(t).GetObject(context.Background(), w.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// keys lists every key of the bucket under prefix.
func (w s3Warm) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for obj := range w.srv.Client(t).ListObjectsIter(context.Background(), w.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		out = append(out, obj.Key)
	}
	return out
}

// servedWithoutRender checks that serve answers every URL from the S3
// result tier, with the ETag and dimensions a server without a cache
// gives, and renders nothing.
func servedWithoutRender(t *testing.T, env []string, urls []string) {
	t.Helper()
	served := startBinary(t, t.TempDir(), env...)
	live := startBinary(t, t.TempDir(), append(slices.Clone(env), "IMAGE_PROXY_ENABLE_CACHE=false")...)
	for _, u := range urls {
		want, got := get(t, live.base+u), get(t, served.base+u)
		if got.status != 200 || got.cache != "HIT-S3" || got.etag != want.etag || want.etag == "" || len(got.body) != len(want.body) {
			t.Errorf("%s: %d %s %s (%d bytes), want 200 HIT-S3 %s (%d bytes)", u, got.status, got.cache, got.etag, len(got.body), want.etag, len(want.body))
		}
	}
	if n := metricSum(t, scrape(served.base), "image_proxy_transforms_total", `work="live"`); n != 0 {
		t.Errorf("%v live renders, want none: every variant was warmed", n)
	}
}

// TestWarmOverS3 warms a bucket's originals, listed or named, into the S3
// result tier: serve then answers each warmed URL HIT-S3 without a
// render, a second run skips everything, and neither the result nor the
// export prefix is ever listed as originals.
func TestWarmOverS3(t *testing.T) {
	srv := miniotest.Start(t)

	t.Run("listed prefix, presets, second run skips", func(t *testing.T) {
		w := newS3Warm(t, srv, "originals/")
		args := []string{"--sizes", "120", "--dpr", "1,2", "--presets", "thumb,card"}
		out, errOut, code := warmRun(t, w.env, args...)
		if code != 0 || !strings.Contains(out, "warm: 3 sources") || !strings.Contains(out, "8 variants rendered, 0 skipped") ||
			!strings.Contains(out, "1 files not images") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		var urls []string
		for _, p := range []string{"/cat.jpg", "/photos/logo.png"} {
			urls = append(urls, p+"?size=120&format=webp", p+"?size=120&format=webp&dpr=2", p+"?preset=thumb", p+"?preset=card")
		}
		servedWithoutRender(t, w.env, urls)
		out, _, code = warmRun(t, w.env, args...)
		if code != 0 || !strings.Contains(out, "0 variants rendered, 8 skipped") {
			t.Errorf("second run: exit %d\n%s", code, out)
		}
	})

	t.Run("named keys and prefixes", func(t *testing.T) {
		w := newS3Warm(t, srv, "originals/")
		srv.Put(t, w.bucket, "originals/photos/deep/dog.jpg", gradient(t, 300, 300, false))
		out, errOut, code := warmRun(t, w.env, "--sizes", "100", "photos", "cat.jpg")
		if code != 0 || !strings.Contains(out, "warm: 3 sources") || !strings.Contains(out, "3 variants rendered") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		servedWithoutRender(t, w.env, []string{"/cat.jpg?size=100&format=webp", "/photos/deep/dog.jpg?size=100&format=webp"})
		out, _, code = warmRun(t, w.env, "--sizes", "100", "missing.jpg")
		if code != 1 || !strings.Contains(out, "failed missing.jpg") {
			t.Errorf("a missing key: exit %d, want 1 naming it:\n%s", code, out)
		}
	})

	t.Run("empty originals prefix leaves out results and exports", func(t *testing.T) {
		w := newS3Warm(t, srv, "", "IMAGE_PROXY_EVENTS_EXPORT_PREFIX=events/")
		// Images a listing must never take for originals.
		for _, k := range []string{"results/stray.jpg", "events/stray.jpg", "static/stray.jpg", ".hidden/x.jpg", "photos/.x.jpg"} {
			srv.Put(t, w.bucket, k, gradient(t, 50, 50, false))
		}
		out, errOut, code := warmRun(t, w.env, "--sizes", "100")
		if code != 0 || !strings.Contains(out, "warm: 4 sources") || !strings.Contains(out, "3 variants rendered") {
			t.Fatalf("exit %d, want the three images of the bucket and the text file, no stray:\n%s%s", code, out, errOut)
		}
		out, errOut, code = warmRun(t, w.env, "--sizes", "100", "--out", "s3://"+w.bucket+"/static/")
		if code != 0 || !strings.Contains(out, "warm: 3 sources") || !strings.Contains(out, "2 variants rendered") {
			t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
		}
		if k := w.keys(t, "static/"); slices.Contains(k, "static/stray-100.webp") || len(k) != 4 {
			t.Errorf("static/: %q, want the stray original, two exports and the manifest", k)
		}
	})
}

// manifest is the JSON an export writes.
type manifest struct {
	Sources []struct {
		Source   string
		Variants []struct {
			File, Format, Preset, ETag string
			Size, Width, Height, Bytes int
			DPR                        float64
		}
	}
}

// TestWarmExportIntoBucket: --out s3://BUCKET/PREFIX/ writes the variants
// as objects named like the directory export, with their Content-Type and
// the configured Cache-Control, and the manifest beside them; a second
// run skips them; and an export prefix overlapping the originals or the
// results is refused before anything starts.
func TestWarmExportIntoBucket(t *testing.T) {
	srv := miniotest.Start(t)
	w := newS3Warm(t, srv, "originals/", "IMAGE_PROXY_CACHE_CONTROL_HEADER=public, max-age=600")
	args := []string{"--out", "s3://" + w.bucket + "/static", "--sizes", "150", "--dpr", "1,2", "--formats", "webp,jpeg", "--presets", "thumb,card"}
	out, errOut, code := warmRun(t, w.env, args...)
	if code != 0 || !strings.Contains(out, "12 variants rendered") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want := map[string]struct {
		mime string
		w, h int
	}{
		"static/cat-150.webp": {"image/webp", 150, 100}, "static/cat-150@2x.jpeg": {"image/jpeg", 300, 200},
		"static/cat-thumb.png": {"image/png", 80, 53}, "static/cat-card.jpeg": {"image/jpeg", 150, 100},
		"static/photos/logo-150.jpeg": {"image/jpeg", 90, 150}, "static/photos/logo-card.png": {"image/png", 90, 150},
	}
	for key, v := range want {
		body, info := w.object(t, key)
		if info.ContentType != v.mime || info.Metadata.Get("Cache-Control") != "public, max-age=600" {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", key, info.ContentType, info.Metadata.Get("Cache-Control"))
		}
		if gw, gh := imageSize(t, body, v.mime); gw != v.w || gh != v.h {
			t.Errorf("%s: %dx%d, want %dx%d", key, gw, gh, v.w, v.h)
		}
	}
	b, info := w.object(t, "static/manifest.json")
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil || info.ContentType != "application/json" || len(m.Sources) != 2 {
		t.Fatalf("manifest (%s): %v\n%s", info.ContentType, err, b)
	}
	for _, src := range m.Sources {
		var presets []string
		for _, v := range src.Variants {
			if _, vi := w.object(t, "static/"+v.File); vi.Size != int64(v.Bytes) || v.ETag == "" {
				t.Errorf("%s: %d bytes stored, manifest says %d (etag %q)", v.File, vi.Size, v.Bytes, v.ETag)
			}
			if v.Preset != "" {
				presets = append(presets, v.Preset+":"+v.File)
			}
		}
		slices.Sort(presets)
		base := strings.TrimSuffix(src.Source, filepath.Ext(src.Source))
		ext := map[string]string{"cat.jpg": "jpeg", "photos/logo.png": "png"}[src.Source]
		if len(src.Variants) != 6 || !slices.Equal(presets, []string{"card:" + base + "-card." + ext, "thumb:" + base + "-thumb.png"}) {
			t.Errorf("%s: %d variants, presets %q", src.Source, len(src.Variants), presets)
		}
	}
	out, _, code = warmRun(t, w.env, args...)
	if code != 0 || !strings.Contains(out, "0 variants rendered, 12 skipped") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
	if k := w.keys(t, "results/"); len(k) != 0 {
		t.Errorf("an export wrote into the result tier: %q", k)
	}
}

// TestWarmOverS3Refusals: what `warm` refuses with S3 before anything
// starts, each with status 2 and the rule named.
func TestWarmOverS3Refusals(t *testing.T) {
	srv := miniotest.Start(t)
	w := newS3Warm(t, srv, "originals/")
	root := newS3Warm(t, srv, "")
	const rule = "an export prefix must neither contain nor lie inside the originals' prefix"
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{w.env, []string{"--out", "s3://" + w.bucket + "/originals/static/"}, "overlaps the originals at s3://" + w.bucket + "/originals/: " + rule},
		{w.env, []string{"--out", "s3://" + w.bucket + "/originals"}, "overlaps the originals"},
		{w.env, []string{"--out", "s3://" + w.bucket + "/results/static/"}, "overlaps the results at s3://" + w.bucket + "/results/: " + rule},
		{w.env, []string{"--out", "s3://" + w.bucket + "/"}, "is the whole bucket of the originals: " + rule},
		{root.env, []string{"--out", "s3://" + root.bucket}, "is the whole bucket of the originals"},
		{root.env, []string{"--out", "s3://" + root.bucket + "/results/x"}, "overlaps the results"},
		{w.env, []string{"--out", "s3:///static/"}, "must be s3://BUCKET/PREFIX/"},
		{w.env, []string{"--out", "s3://" + w.bucket + "/../x/"}, "must be s3://BUCKET/PREFIX/"},
		{w.env, []string{"--watch"}, "--watch follows the local root"},
		{w.env, []string{"../x.jpg"}, "not a plain path below IMAGE_PROXY_S3_PREFIX"},
		{root.env, []string{"results/ab.jpg"}, "lies under results/"},
		{w.env, []string{"--presets", "nope"}, `"nope" is not one (preset must be one of card, thumb.)`},
		{w.env, []string{"--presets", "360"}, "presets whose names are not numbers"},
		{[]string{"IMAGE_PROXY_ROOT_PATH=" + t.TempDir(), "IMAGE_PROXY_ENABLE_DISK_CACHE=true"}, []string{"--out", "s3://b/static/"}, "needs IMAGE_PROXY_S3_BUCKET"},
		{append(slices.Clone(w.env), "IMAGE_PROXY_S3_RESULT_PREFIX="), nil, "no result tier to warm"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, code := warmRun(t, c.env, c.args...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want 2 and %q on stderr:\n%s%s", code, c.want, out, errOut)
			}
		})
	}
	if k := w.keys(t, ""); len(k) != 3 {
		t.Errorf("a refused run wrote: %q", k)
	}
}

// TestWarmSettingsRefused: the warm settings this issue adds, each
// refused at start with status 2 and a line naming it.
func TestWarmSettingsRefused(t *testing.T) {
	srv := miniotest.Start(t)
	w := newS3Warm(t, srv, "originals/")
	cases := []struct{ env, want string }{
		{"IMAGE_PROXY_WARM_DPRS=0.5", `IMAGE_PROXY_WARM_DPRS="0.5": must be numbers from 1.0 to 10.0`},
		{"IMAGE_PROXY_WARM_DPRS=1,,2", `IMAGE_PROXY_WARM_DPRS="1,,2": must be numbers`},
		{"IMAGE_PROXY_WARM_PRESETS=hero", `IMAGE_PROXY_WARM_PRESETS="hero": must be names of presets this server defines (IMAGE_PROXY_PRESETS), separated by commas; "hero" is not one`},
		{"IMAGE_PROXY_WARM_PRESETS=thumb,,card", `IMAGE_PROXY_WARM_PRESETS="thumb,,card": must be names of presets`},
		{"IMAGE_PROXY_EVENTS_EXPORT_PREFIX=static", `IMAGE_PROXY_EVENTS_EXPORT_PREFIX="static": must be a key prefix ending in /`},
		{"IMAGE_PROXY_EVENTS_EXPORT_PREFIX=../static/", `IMAGE_PROXY_EVENTS_EXPORT_PREFIX="../static/": must be a key prefix without`},
		{"IMAGE_PROXY_EVENTS_EXPORT_PREFIX=originals/static/", `IMAGE_PROXY_EVENTS_EXPORT_PREFIX="originals/static/": s3://` + w.bucket + `/originals/static/ overlaps the originals`},
		{"IMAGE_PROXY_EVENTS_EXPORT_PREFIX=results/", `IMAGE_PROXY_EVENTS_EXPORT_PREFIX="results/": s3://` + w.bucket + `/results/ overlaps the results`},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			// serve and warm read the same settings: both refuse.
			for _, args := range [][]string{nil, {"warm"}} {
				code, line := refusedRun(t, append(slices.Clone(w.env), c.env), args...)
				if code != 2 || strings.Contains(line, "\n") || !strings.Contains(line, c.want) {
					t.Errorf("%v: exit %d, want 2 and one line with %q; got %q", args, code, c.want, line)
				}
			}
		})
	}
	code, line := refusedRun(t, []string{"IMAGE_PROXY_ROOT_PATH=" + t.TempDir(), "IMAGE_PROXY_EVENTS_EXPORT_PREFIX=static/"})
	if code != 2 || !strings.Contains(line, "IMAGE_PROXY_EVENTS_EXPORT_PREFIX: it needs IMAGE_PROXY_S3_BUCKET") {
		t.Errorf("an export prefix without a bucket: exit %d, %q", code, line)
	}
}

// refusedRun runs the binary with env and args (serve when none) and
// returns its exit status and output; a setting wrongly accepted starts
// the server, which the deadline turns into a failure.
func refusedRun(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	plain := command(t.TempDir(), append(env, "IMAGE_PROXY_BIND_ADDRESS=127.0.0.1:0"), args...)
	cmd := exec.CommandContext(ctx, plain.Path, plain.Args[1:]...)
	cmd.Dir, cmd.Env = plain.Dir, plain.Env
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%v: %v, want an exit status\n%s", args, err, b)
	}
	return ee.ExitCode(), strings.TrimSpace(string(b))
}
