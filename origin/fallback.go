package origin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/metrics"
	"image-proxy/metrics/spans"
	"image-proxy/transform"
)

const (
	maxRedirects = 3
	// notFoundTTL keeps scans for missing files from reaching the upstream
	// again and again; short enough that a newly uploaded image shows soon.
	notFoundTTL      = 30 * time.Second
	notFoundCapacity = 10000
	// sniffBytes is how much of a fetched body the image check reads; SVG,
	// being text with an optional prolog, needs the most.
	sniffBytes = 4096
)

// Fallback fetches originals from an upstream, the last source of the
// chain. Fetches go through the result cache under a key of their own, so
// concurrent requests for one missing path make one upstream request and
// later variants reuse the original.
type Fallback struct {
	base      *url.URL
	client    *http.Client
	maxBytes  int64
	timeout   time.Duration
	userAgent string
	cache     cache.Cache
	m         *metrics.Metrics

	mu       sync.Mutex
	notFound map[string]time.Time // path → expiry
}

var errCrossOriginRedirect = errors.New("redirect to another origin refused")

// NewFallback builds the upstream client; version goes into its User-Agent.
// With tp making spans (nil and the no-op provider do not), each fetch is
// a client span and sends its traceparent upstream.
func NewFallback(cfg FallbackConfig, version string, c cache.Cache, m *metrics.Metrics, tp trace.TracerProvider) (*Fallback, error) {
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("fallback url: %w", err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32,
		// The byte cap must count bytes on the wire, not what a gzip
		// stream would inflate to.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	f := &Fallback{
		base: base, maxBytes: cfg.MaxBytes, timeout: cfg.Timeout,
		userAgent: "image-proxy/" + version, cache: c, m: m,
		notFound: map[string]time.Time{},
	}
	var rt http.RoundTripper = transport
	if spans.New(tp).On() {
		rt = otelhttp.NewTransport(transport, otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
	}
	f.client = &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Returning an error here stops before the next request is sent,
			// so another host is never contacted.
			if len(via) > maxRedirects || req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
				return errCrossOriginRedirect
			}
			return nil
		},
	}
	return f, nil
}

// Kind names the source in traces and logs.
func (f *Fallback) Kind() string { return "fallback" }

// upstreamURL escapes each segment of rel onto the base path. rel has
// already passed the path-safety rules, so it has no empty, dot or dot-dot segment and
// cannot change the host or climb above the base.
func (f *Fallback) upstreamURL(rel string) string {
	u := *f.base
	segs := strings.Split(rel, "/")
	escaped := make([]string, len(segs))
	for i, s := range segs {
		escaped[i] = url.PathEscape(s)
	}
	u.Path = f.base.Path + "/" + rel
	u.RawPath = f.base.EscapedPath() + "/" + strings.Join(escaped, "/")
	return u.String()
}

// Stat fetches the original: the upstream tells nothing cheaper. The bytes
// ride along, so a render reads no further.
func (f *Fallback) Stat(ctx context.Context, rel string) (Original, error) {
	o, data, err := f.get(ctx, rel)
	o.data = data
	return o, err
}

// Open fetches the original; the body is the cached bytes.
func (f *Fallback) Open(ctx context.Context, rel string) (Original, Body, error) {
	o, data, err := f.get(ctx, rel)
	if err != nil {
		return Original{}, nil, err
	}
	return o, NewMemoryBody(data), nil
}

func (f *Fallback) get(ctx context.Context, rel string) (Original, []byte, error) {
	if f.recentlyMissing(rel) {
		return Original{}, nil, fault.New(fault.NotFound, "", nil)
	}
	val, _, err := f.cache.Fetch(ctx, "orig|v1|"+rel, func(ctx context.Context) ([]byte, error) {
		return f.fetch(ctx, rel)
	})
	if err != nil {
		return Original{}, nil, err
	}
	o, data := decodeOriginal(rel, val)
	return o, data, nil
}

func (f *Fallback) recentlyMissing(rel string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.notFound[rel]
	if ok && time.Now().Before(exp) {
		return true
	}
	delete(f.notFound, rel)
	return false
}

func (f *Fallback) rememberMissing(rel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.notFound) >= notFoundCapacity {
		clear(f.notFound) // a scan is under way; forgetting early is harmless
	}
	f.notFound[rel] = time.Now().Add(notFoundTTL)
}

// fetch makes one upstream request under the whole-fetch deadline and
// returns the original in the cache's value format.
func (f *Fallback) fetch(ctx context.Context, rel string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	val, err := f.fetchOnce(ctx, rel)
	result := fallbackResult(err)
	f.m.FallbackRequests.WithLabelValues(result).Inc()
	if result == metrics.FallbackNotFound {
		f.rememberMissing(rel)
	}
	return val, err
}

// fallbackResult is the result label of one upstream fetch. Every error
// the fetch returns has a kind but the caller's own cancellation, an error
// like any other.
func fallbackResult(err error) string {
	if err == nil {
		return metrics.FallbackOK
	}
	if e, ok := fault.As(err); ok {
		return e.Kind.Outcome().Label
	}
	return fault.Internal.Outcome().Label
}

func (f *Fallback) fetchOnce(ctx context.Context, rel string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.upstreamURL(rel), nil)
	if err != nil {
		return nil, fault.New(fault.BadGateway, "", err)
	}
	req.Header.Set("User-Agent", f.userAgent)
	req.Header.Set("Accept", "image/*")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fault.New(fault.NotFound, "", nil)
	case resp.StatusCode != http.StatusOK:
		return nil, fault.New(fault.BadGateway, "", fmt.Errorf("upstream status %d", resp.StatusCode))
	case resp.ContentLength > f.maxBytes:
		return nil, errUpstreamTooBig
	}
	// Read at most cap+1 bytes: one byte past the cap proves the body too large.
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, errUpstreamTooBig
	}
	if transform.Sniff(body[:min(len(body), sniffBytes)]) == transform.FormatUnknown {
		return nil, fault.New(fault.BadGateway, "", errors.New("upstream body is not an image"))
	}
	modTime, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return encodeOriginal(modTime, resp.Header.Get("ETag"), body), nil
}

// transportFailure tells a timeout (504) from any other failure (502).
func transportFailure(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errCrossOriginRedirect):
		return fault.New(fault.BadGateway, "", err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fault.New(fault.GatewayTimeout, "", err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fault.New(fault.BadGateway, "", err)
}

// An original in the cache: 8 bytes of modification time (Unix seconds, 0
// when unknown), 2 bytes of ETag length, the upstream ETag, the image.
func encodeOriginal(modTime time.Time, etag string, body []byte) []byte {
	if len(etag) > 1024 {
		etag = ""
	}
	out := make([]byte, 10, 10+len(etag)+len(body))
	if !modTime.IsZero() {
		binary.BigEndian.PutUint64(out, uint64(modTime.Unix()))
	}
	binary.BigEndian.PutUint16(out[8:], uint16(len(etag)))
	out = append(out, etag...)
	return append(out, body...)
}

func decodeOriginal(rel string, val []byte) (Original, []byte) {
	secs := int64(binary.BigEndian.Uint64(val))
	n := int(binary.BigEndian.Uint16(val[8:]))
	etag, data := string(val[10:10+n]), val[10+n:]
	var mod time.Time
	if secs != 0 {
		mod = time.Unix(secs, 0)
	}
	return Original{
		Rel: rel, Size: int64(len(data)), ModTime: mod,
		Identity: fmt.Sprintf("fallback:%s|%d|%d|%s", rel, len(data), secs, etag),
	}, data
}

var errUpstreamTooBig = fault.New(fault.UpstreamTooBig, "", nil)
