package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"image-proxy/fault"
	"image-proxy/internal/testsupport/miniotest"
)

var bucketSeq atomic.Int64

// newS3Fixture makes a fresh bucket on srv, so subtests never see each
// other's objects, and the settings of a source reading it under prefix.
func newS3Fixture(t *testing.T, srv *miniotest.Server, prefix string) (string, S3Config) {
	t.Helper()
	bucket := srv.Bucket(t, fmt.Sprintf("src-%d", bucketSeq.Add(1)))
	return bucket, S3Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Prefix: prefix, PathStyle: true, Timeout: 5 * time.Second,
	}
}

func newS3(t testing.TB, cfg S3Config) *S3 {
	t.Helper()
	client, err := NewS3Client(cfg)
	must(t, err)
	return NewS3(client, cfg)
}

// kindOf is the fault kind of err; Internal when it has none.
func kindOf(err error) fault.Kind {
	if e, ok := fault.As(err); ok {
		return e.Kind
	}
	return fault.Internal
}

// TestS3Source runs the source's cases against one real MinIO (starting it
// is the slow part; each case has a bucket of its own). What a client sees
// of them over HTTP is proxy's TestS3Source.
func TestS3Source(t *testing.T) {
	srv := miniotest.Start(t)
	rocket := readImage(t, "rocket.jpg")
	ctx := context.Background()

	t.Run("identity", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "p/")
		srv.Put(t, bucket, "p/a.jpg", rocket)
		s3 := newS3(t, cfg)
		st, err := s3.Stat(ctx, "a.jpg")
		must(t, err)
		o, b, err := s3.Open(ctx, "a.jpg")
		must(t, err)
		defer b.Close()
		if !reflect.DeepEqual(o, st) || o.Size != int64(len(rocket)) || !strings.HasPrefix(o.Identity, "s3:p/a.jpg|") {
			t.Errorf("Open %+v and Stat %+v disagree", o, st)
		}
		if got := strings.Count(o.Identity, "|"); got != 3 {
			t.Errorf("identity %q: want key|etag|size|mtime", o.Identity)
		}
		if s3.Kind() != "s3" {
			t.Errorf("Kind %q", s3.Kind())
		}
	})

	t.Run("read whole, within the limit", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "")
		srv.Put(t, bucket, "r.jpg", rocket)
		s3 := newS3(t, cfg)
		o, err := s3.Stat(ctx, "r.jpg")
		must(t, err)
		data, err := ReadAll(ctx, s3, o, o.Size)
		if err != nil || !bytes.Equal(data, rocket) {
			t.Fatalf("ReadAll: %d bytes, %v; want the object's %d", len(data), err, len(rocket))
		}
		if _, err := ReadAll(ctx, s3, o, o.Size-1); kindOf(err) != fault.SourceTooBig {
			t.Errorf("ReadAll over the limit: %v, want SourceTooBig", err)
		}
	})

	t.Run("missing asks the next source", func(t *testing.T) {
		_, cfg := newS3Fixture(t, srv, "")
		s3 := newS3(t, cfg)
		if _, err := s3.Stat(ctx, "nowhere.jpg"); !errors.Is(err, ErrMissing) {
			t.Fatalf("Stat of a missing object: %v, want ErrMissing", err)
		}
		next := sourceFunc(func(rel string) (Original, Body, error) {
			return Original{Rel: rel, Size: int64(len(rocket)), Identity: "next|" + rel}, NewMemoryBody(rocket), nil
		})
		o, b, err := Chain{s3, next}.Open(ctx, "nowhere.jpg")
		if err != nil || o.Identity != "next|nowhere.jpg" {
			t.Fatalf("chain after a missing object: %+v, %v", o, err)
		}
		b.Close()
		if _, _, err := (Chain{s3}).Stat(ctx, "nowhere.jpg"); kindOf(err) != fault.NotFound {
			t.Errorf("chain of the bucket alone: %v, want NotFound", err)
		}
	})

	t.Run("access denied", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "secret-prefix/")
		srv.Put(t, bucket, "secret-prefix/private/rocket.jpg", rocket)
		cfg.SecretKey = "not-the-secret"
		s3 := newS3(t, cfg)
		_, err := s3.Stat(ctx, "private/rocket.jpg")
		_, _, openErr := s3.Open(ctx, "private/rocket.jpg")
		for _, err := range []error{err, openErr} {
			if kindOf(err) != fault.StorageError {
				t.Errorf("wrong secret: %v, want StorageError (502)", err)
			}
		}
	})

	t.Run("timeout", func(t *testing.T) {
		_, cfg := newS3Fixture(t, srv, "")
		cfg.Endpoint = "http://" + miniotest.Silent(t)
		cfg.Timeout = 200 * time.Millisecond
		s3 := newS3(t, cfg)
		_, err := s3.Stat(ctx, "slow.jpg")
		_, _, openErr := s3.Open(ctx, "slow.jpg")
		for _, err := range []error{err, openErr} {
			if kindOf(err) != fault.StorageTimeout {
				t.Errorf("silent store: %v, want StorageTimeout (504)", err)
			}
		}
	})
}

// sourceFunc is a Source answering Open from a function (Stat from Open).
type sourceFunc func(rel string) (Original, Body, error)

func (f sourceFunc) Stat(_ context.Context, rel string) (Original, error) {
	o, b, err := f(rel)
	if b != nil {
		b.Close()
	}
	return o, err
}

func (f sourceFunc) Open(_ context.Context, rel string) (Original, Body, error) { return f(rel) }

func (f sourceFunc) Kind() string { return "func" }

// The S3 client's transport sends the trace along, and nothing without one.
func TestS3TransportPropagates(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
	}))
	t.Cleanup(srv.Close)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	traced := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	client := &http.Client{Transport: propagating{http.DefaultTransport}}
	for _, c := range []struct {
		ctx  context.Context
		want string
	}{
		{traced, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{t.Context(), ""},
	} {
		req, _ := http.NewRequestWithContext(c.ctx, http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := receive(t, "the request", got); h != c.want {
			t.Errorf("traceparent %q, want %q", h, c.want)
		}
		if req.Header.Get("traceparent") != "" {
			t.Error("the caller's request was changed")
		}
	}
}

// BenchmarkSourceRead is one Stat and one whole read of rocket.jpg, as a
// transform miss does, from loopback MinIO and from the local root for
// comparison.
func BenchmarkSourceRead(b *testing.B) {
	srv := miniotest.Start(b)
	bucket := srv.Bucket(b, "bench")
	srv.Put(b, bucket, "rocket.jpg", readImage(b, "rocket.jpg"))
	s3 := newS3(b, S3Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true, Timeout: 10 * time.Second})
	local, err := OpenLocal("../data/images")
	must(b, err)
	defer local.Close()
	for name, src := range map[string]Source{"s3": s3, "local": local} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				o, err := src.Stat(ctx, "rocket.jpg")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ReadAll(ctx, src, o, o.Size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
