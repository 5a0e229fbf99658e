package warm

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"image-proxy/imageformat"
	"image-proxy/internal/testsupport/miniotest"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// TestS3ExportManifest: two sinks over one prefix (two replicas handling
// events at once) each write their own source; both end up in the
// manifest, since the second write finds the first's and merges. Has
// holds for a source exported with its identity, not once it changes or
// its object is gone.
func TestS3ExportManifest(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "export")
	client := srv.Client(t)
	ctx := context.Background()
	x := S3Export{Client: client, Bucket: bucket, Prefix: "static/", CacheControl: "public, max-age=60", Timeout: 10 * time.Second}
	a, err := NewS3ExportSink(ctx, x)
	must(t, err)
	b, err := NewS3ExportSink(ctx, x)
	must(t, err)

	mod := time.Unix(1700000000, 0).UTC()
	cat := origin.Original{Rel: "cat.jpg", Size: 100, ModTime: mod, Identity: "s3:cat|1"}
	dog := origin.Original{Rel: "dogs/dog.png", Size: 200, ModTime: mod, Identity: "s3:dog|1"}
	vs := request.Variants{MaxBox: 4000}
	item := func(o origin.Original, preset string) Item {
		req := request.Request{Transform: true, Size: 100, DPR: 1, Output: request.Output{Format: imageformat.WebP}}
		return Item{Preset: preset, Size: 100, DPR: 1, Format: imageformat.WebP, Variant: vs.Of(o.Identity, req, "")}
	}
	res := transform.Result{Data: []byte("RIFF....WEBP"), Format: imageformat.WebP, Width: 100, Height: 66}
	must(t, a.Put(ctx, cat, item(cat, ""), res))
	must(t, b.Put(ctx, dog, item(dog, "thumb"), res))
	must(t, a.Flush())
	must(t, b.Flush())

	obj, err := client.GetObject(ctx, bucket, "static/manifest.json", minio.GetObjectOptions{})
	must(t, err)
	body, err := io.ReadAll(obj)
	must(t, err)
	var m Manifest
	must(t, json.Unmarshal(body, &m))
	if len(m.Sources) != 2 || m.Sources[0].Variants[0].File != "cat-100.webp" || m.Sources[1].Variants[0].File != "dogs/dog-thumb.webp" ||
		m.Sources[1].Variants[0].Preset != "thumb" {
		t.Fatalf("manifest: %s", body)
	}

	c, err := NewS3ExportSink(ctx, x) // a later run
	must(t, err)
	if !c.Has(ctx, cat, item(cat, "")) || !c.Has(ctx, dog, item(dog, "thumb")) {
		t.Error("a later run does not find the exported variants")
	}
	changed := cat
	changed.Identity, changed.Size = "s3:cat|2", 101
	if c.Has(ctx, changed, item(changed, "")) {
		t.Error("a replaced source counts as exported")
	}
	must(t, client.RemoveObject(ctx, bucket, "static/cat-100.webp", minio.RemoveObjectOptions{}))
	if c.Has(ctx, cat, item(cat, "")) {
		t.Error("a deleted object counts as exported")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
