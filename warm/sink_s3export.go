package warm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"image-proxy/imageformat"
	"image-proxy/origin"
)

// S3Export is where an export into a bucket goes and how its objects are
// written.
type S3Export struct {
	Client       *minio.Client // the one client of the bucket (origin.NewS3Client)
	Bucket       string
	Prefix       string        // "" or ending in /; checked with CheckExportPrefix
	CacheControl string        // each variant's Cache-Control (IMAGE_PROXY_CACHE_CONTROL_HEADER); "": none
	Timeout      time.Duration // each request to the bucket (IMAGE_PROXY_S3_TIMEOUT)
}

// manifestCacheControl is the manifest object's Cache-Control: it changes
// with every run, so a CDN in front of the bucket must ask again.
const manifestCacheControl = "no-cache"

// NewS3ExportSink writes static variants as objects under x.Prefix in
// x.Bucket, named as the directory export names its files, each with its
// Content-Type and x.CacheControl, and the manifest beside them
// (manifest.json under the prefix). It reads the manifest a former run
// left there; writing it (Flush) is conditional on the version read, so
// replicas exporting on events at once lose none of each other's sources.
// The caller checks the prefix first (CheckExportPrefix).
func NewS3ExportSink(ctx context.Context, x S3Export) (*ExportSink, error) {
	return newExportSink(ctx, s3Files(x))
}

// ParseS3URL splits s3://BUCKET/PREFIX into the bucket and the prefix,
// which ends in / unless it is empty (the prefix "static" and "static/"
// are the same export). ok is false for a value that is no s3:// URL.
func ParseS3URL(u string) (bucket, prefix string, ok bool, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", false, nil
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" || origin.CheckKeyPrefix("--out", prefix) != nil {
		return "", "", true, fmt.Errorf("%s: must be s3://BUCKET/PREFIX/, such as s3://photos/static/", u)
	}
	if prefix != "" && prefix[len(prefix)-1] != '/' {
		prefix += "/"
	}
	return bucket, prefix, true, nil
}

type s3Files S3Export

func (x s3Files) key(name string) string { return x.Prefix + name }

func (x s3Files) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, x.Timeout)
}

func (x s3Files) readManifest(ctx context.Context) ([]byte, string, error) {
	ctx, cancel := x.timeout(ctx)
	defer cancel()
	obj, err := x.Client.GetObject(ctx, x.Bucket, x.key(ManifestFile), minio.GetObjectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer obj.Close()
	info, err := obj.Stat()
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(obj)
	return b, info.ETag, err
}

// writeManifest is conditional: on the ETag read (If-Match), or on there
// being none yet (If-None-Match: *).
func (x s3Files) writeManifest(ctx context.Context, b []byte, version string) error {
	opts := minio.PutObjectOptions{ContentType: "application/json", CacheControl: manifestCacheControl}
	if version == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(version)
	}
	err := x.put(ctx, ManifestFile, b, opts)
	if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" {
		return errManifestChanged
	}
	return x.failed(ManifestFile, err)
}

func (x s3Files) size(ctx context.Context, name string) (int64, bool) {
	ctx, cancel := x.timeout(ctx)
	defer cancel()
	info, err := x.Client.StatObject(ctx, x.Bucket, x.key(name), minio.StatObjectOptions{})
	if err != nil {
		return 0, false
	}
	return info.Size, true
}

// write is one PUT: S3 makes the object visible whole or not at all.
func (x s3Files) write(ctx context.Context, name string, data []byte, f imageformat.Format) error {
	return x.failed(name, x.put(ctx, name, data, minio.PutObjectOptions{ContentType: f.MIME(), CacheControl: x.CacheControl}))
}

// remove deletes one object; S3 answers a missing one with success.
func (x s3Files) remove(ctx context.Context, name string) error {
	ctx, cancel := x.timeout(ctx)
	defer cancel()
	return x.failed(name, x.Client.RemoveObject(ctx, x.Bucket, x.key(name), minio.RemoveObjectOptions{}))
}

// failed names the object a write failed on.
func (x s3Files) failed(name string, err error) error {
	if err != nil {
		return fmt.Errorf("export s3://%s/%s: %w", x.Bucket, x.key(name), err)
	}
	return nil
}

func (x s3Files) put(ctx context.Context, name string, data []byte, opts minio.PutObjectOptions) error {
	ctx, cancel := x.timeout(ctx)
	defer cancel()
	_, err := x.Client.PutObject(ctx, x.Bucket, x.key(name), bytes.NewReader(data), int64(len(data)), opts)
	return err
}
