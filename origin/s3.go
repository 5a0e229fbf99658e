package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"image-proxy/fault"
	"image-proxy/metrics"
)

// S3 reads originals from an S3-compatible bucket under a key prefix.
//
// minio-go over aws-sdk-go-v2: its *Object is an io.ReaderAt whose reads
// after the first are conditional on the ETag the object was described
// with (If-Match), so a replacement mid-request fails instead of mixing two
// versions; its PutObjectOptions has conditional writes (If-None-Match: *)
// for the result tier's render lease; and it has one small dependency tree
// instead of the SDK's many modules.
type S3 struct {
	client  *minio.Client
	bucket  string
	prefix  string
	timeout time.Duration
	ids     *identityCache     // nil: a HEAD for every Stat
	flight  singleflight.Group // with ids: one HEAD for concurrent misses of a key

	hits, heads prometheus.Counter // image_proxy_s3_stat_cache_lookups_total
}

// S3Option configures NewS3.
type S3Option func(*s3Options)

type s3Options struct {
	m       *metrics.Metrics
	now     func() time.Time
	maxKeys int
}

// WithS3Metrics counts the identity cache's look-ups on m.
func WithS3Metrics(m *metrics.Metrics) S3Option {
	return func(o *s3Options) { o.m = m }
}

// errS3Timeout is the cancellation cause when a call outlives
// IMAGE_PROXY_S3_TIMEOUT; it tells our deadline (504) from the caller's
// own cancellation.
var errS3Timeout = errors.New("s3: no answer within IMAGE_PROXY_S3_TIMEOUT")

// NewS3 reads the originals under cfg.Prefix in cfg.Bucket through
// client, which NewS3Client made from the same cfg and the result tier
// shares: one connection pool to the store, not one per user.
// cfg.StatMaxAge above 0 keeps descriptions in memory (s3_identity.go).
func NewS3(client *minio.Client, cfg S3Config, opts ...S3Option) *S3 {
	o := s3Options{now: time.Now, maxKeys: maxS3Identities}
	for _, opt := range opts {
		opt(&o)
	}
	if o.m == nil {
		o.m = metrics.New(prometheus.NewRegistry(), nil)
	}
	s := &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, timeout: cfg.Timeout,
		hits:  o.m.S3StatCacheLookups.WithLabelValues(metrics.S3StatCacheHit),
		heads: o.m.S3StatCacheLookups.WithLabelValues(metrics.S3StatCacheHead)}
	if cfg.StatMaxAge > 0 {
		s.ids = newIdentityCache(cfg.StatMaxAge, o.maxKeys, o.now)
	}
	return s
}

// Forget drops what the identity cache knows of rel, so the next Stat asks
// the bucket: an event calls it when rel is created, replaced or removed.
func (s *S3) Forget(rel string) {
	if s.ids != nil {
		s.ids.forget(rel)
		s.flight.Forget(rel) // a Stat from now on does not join a HEAD sent before
	}
}

// Kind names the source in traces and logs.
func (s *S3) Kind() string { return "s3" }

// NewS3Client is the one client of the bucket, for this source and the
// result tier alike; it contacts nothing until the first request.
func NewS3Client(cfg S3Config) (*minio.Client, error) {
	host, secure := "s3.amazonaws.com", true // minio-go picks the region's endpoint
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, errors.New("s3 endpoint: not a URL") // the value may hold a secret
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		// Every replica's renders and passthroughs share one bucket host.
		MaxIdleConnsPerHost: 64,
		// Sizes and ranges must count stored bytes.
		DisableCompression: true,
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region, // known, so no GetBucketLocation round trip
		BucketLookup: lookup,
		Transport:    propagating{transport}, // a traceparent on every request
		// One retry covers a dropped keep-alive connection; minio-go's
		// default of ten with backoff would turn a failing store's 502
		// into a 504 once the retries outlast the timeout.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return client, nil
}

func (s *S3) key(rel string) string { return s.prefix + rel }

// Stat answers from the identity cache while its entry is young enough
// (a missing key too), else with one HEAD request, whose answer it keeps.
func (s *S3) Stat(ctx context.Context, rel string) (Original, error) {
	if s.ids != nil {
		if e, ok := s.ids.lookup(rel); ok {
			s.hits.Inc()
			if e.missing {
				return Original{}, ErrMissing
			}
			return e.o, nil
		}
	}
	s.heads.Inc()
	if s.ids == nil {
		return s.head(ctx, rel)
	}
	// Concurrent misses of one key share one HEAD. It runs detached from
	// the first caller's cancellation (its own timeout still bounds it), so
	// one client hanging up fails no other; each caller waits only as long
	// as its own context allows.
	ch := s.flight.DoChan(rel, func() (any, error) {
		return s.head(context.WithoutCancel(ctx), rel)
	})
	select {
	case r := <-ch:
		o, _ := r.Val.(Original)
		return o, r.Err
	case <-ctx.Done():
		return Original{}, fmt.Errorf("s3: %w", ctx.Err())
	}
}

// head describes rel with one HEAD request and keeps the answer.
func (s *S3) head(ctx context.Context, rel string) (Original, error) {
	gen := s.begin()
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, errS3Timeout)
	defer cancel()
	key := s.key(rel)
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		err = s3Error(ctx, err)
		s.remember(gen, rel, Original{}, "", err)
		return Original{}, err
	}
	o := describeObject(rel, key, info)
	s.remember(gen, rel, o, info.ETag, nil)
	return o, nil
}

// begin is the cache's generation before a request to the bucket; 0
// without a cache.
func (s *S3) begin() uint64 {
	if s.ids == nil {
		return 0
	}
	return s.ids.generation()
}

// remember keeps what a request made at generation gen learnt: an object,
// or that there is none. Other failures are not kept: the next request
// asks again.
func (s *S3) remember(gen uint64, rel string, o Original, etag string, err error) {
	switch {
	case s.ids == nil:
	case err == nil:
		s.ids.store(gen, rel, o, etag, false)
	case errors.Is(err, ErrMissing):
		s.ids.store(gen, rel, Original{}, "", true)
	}
}

// Open describes the object through the same *minio.Object that reads it:
// every read is conditional on the ETag described, so the identity and the
// bytes belong to one version. When the identity cache remembers rel, the
// first GET is conditional on the remembered ETag too (If-Match): a 412
// means the object was replaced since, so the entry is dropped and the
// object opened once more unconditionally, that GET describing the new
// version (and refreshing the entry). The caller sees the new identity:
// ReadAll refuses it for a render keyed on the old one.
func (s *S3) Open(ctx context.Context, rel string) (Original, Body, error) {
	etag := ""
	if s.ids != nil {
		if e, ok := s.ids.lookup(rel); ok {
			if e.missing {
				return Original{}, nil, ErrMissing
			}
			etag = e.etag
		}
	}
	gen := s.begin()
	o, b, err := s.open(ctx, rel, etag)
	if etag != "" && errors.Is(err, errChangedSince) {
		s.ids.forget(rel)
		gen = s.begin()
		o, b, err = s.open(ctx, rel, "")
	}
	s.remember(gen, rel, o.Original, o.etag, err)
	return o.Original, b, err
}

// errChangedSince is a conditional GET's 412: the object's ETag is no
// longer the one remembered.
var errChangedSince = errors.New("s3: object replaced since it was described")

type openedObject struct {
	Original
	etag string
}

// open GETs rel, conditional on ifMatch when it is set.
func (s *S3) open(ctx context.Context, rel, ifMatch string) (openedObject, Body, error) {
	// The body outlives this call, so the deadline is a timer re-armed by
	// each read rather than one context deadline for the whole response.
	ctx, cancel := context.WithCancelCause(ctx)
	b := &s3Body{cancel: cancel, ctx: ctx, timeout: s.timeout}
	b.timer = time.AfterFunc(s.timeout, func() { cancel(errS3Timeout) })
	key := s.key(rel)
	var opts minio.GetObjectOptions
	if ifMatch != "" {
		_ = opts.SetMatchETag(ifMatch) // fails only for "", excluded above
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	var info minio.ObjectInfo
	if err == nil {
		b.obj = obj
		info, err = obj.Stat()
	}
	b.timer.Stop()
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
			err = errChangedSince
		} else {
			err = s3Error(ctx, err) // before Close cancels ctx
		}
		b.Close()
		return openedObject{}, nil, err
	}
	return openedObject{describeObject(rel, key, info), info.ETag}, b, nil
}

// describeObject keys on everything that changes when the object is
// replaced: the ETag alone can repeat (same bytes re-uploaded is harmless,
// but a multipart ETag is not a content hash), so size and time join it.
func describeObject(rel, key string, info minio.ObjectInfo) Original {
	b := make([]byte, 0, len(key)+len(info.ETag)+48)
	b = append(b, "s3:"...)
	b = append(b, key...)
	b = append(b, '|')
	b = append(b, info.ETag...)
	b = append(b, '|')
	b = strconv.AppendInt(b, info.Size, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, info.LastModified.UnixNano(), 10)
	return Original{Rel: rel, Size: info.Size, ModTime: info.LastModified, Identity: string(b)}
}

// s3Error sorts a failed call: not there → ErrMissing (ask the next
// source); our deadline → 504; anything else the store said or did → 502.
// The public messages name neither the bucket nor the key; err, kept for
// the log, does.
func s3Error(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errS3Timeout) {
		return fault.New(fault.StorageTimeout, "", err)
	}
	if ctx.Err() != nil {
		// The caller gave up (client gone, queue deadline): its error, not
		// the store's.
		return fmt.Errorf("s3: %w (%v)", ctx.Err(), err)
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case minio.NoSuchKey, minio.XMinioInvalidObjectName, "KeyTooLongError":
			// A key S3 cannot hold is an object it does not have.
			return ErrMissing
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fault.New(fault.StorageTimeout, "", err)
	}
	return fault.New(fault.StorageError, "", err)
}

// s3Body is an opened object. Each ReadAt is one ranged GET, bounded by the
// timeout from its start.
type s3Body struct {
	mu      sync.Mutex
	obj     *minio.Object
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

func (b *s3Body) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Reset(b.timeout)
	n, err := b.obj.ReadAt(p, off)
	b.timer.Stop()
	if err == io.EOF && n == len(p) {
		// minio-go reports the end with the last bytes; callers reading an
		// exact size (ReadAll) expect a full read to succeed.
		err = nil
	}
	if err != nil && err != io.EOF {
		err = s3Error(b.ctx, err)
		if errors.Is(err, ErrMissing) {
			// Deleted since Open described it.
			err = fault.New(fault.NotFound, "", nil)
		}
	}
	return n, err
}

func (b *s3Body) Close() error {
	b.timer.Stop()
	var err error
	if b.obj != nil {
		err = b.obj.Close()
	}
	b.cancel(nil)
	return err
}

// propagating adds the traceparent of the request's span to every request
// through base, so an S3 request joins the trace that caused it. It makes
// no spans itself (the source and tier spans around the calls do) and
// sends nothing when the context carries no trace.
type propagating struct{ base http.RoundTripper }

func (p propagating) RoundTrip(req *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(req.Context()).IsValid() {
		return p.base.RoundTrip(req)
	}
	out := req.Clone(req.Context()) // a RoundTripper must not change its request
	propagation.TraceContext{}.Inject(req.Context(), propagation.HeaderCarrier(out.Header))
	return p.base.RoundTrip(out)
}
