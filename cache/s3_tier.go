package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// The S3 tier keeps entries (entry.go: header, checksum, value) as objects
//
//	<prefix>ab/cd/<sha256 of the key in hex>
//
// sharded like the disk tier so that listing a prefix stays cheap, and
// render leases (see Lease) as
//
//	<prefix>lease/<sha256 of the key in hex>
//
// apart from the results, so that a lifecycle rule on <prefix>lease/ can
// clear leases orphaned by a crash (a day is plenty; a stale lease is taken
// over anyway once expired).
const (
	leaseDir = "lease/"
	// leaseExpiresMeta is the user metadata (x-amz-meta-lease-expires)
	// holding a lease's expiry, Unix milliseconds on the holder's clock, so
	// a waiter learns it with a HEAD.
	leaseExpiresMeta = "Lease-Expires"
	// s3RetryAfter is how long a failing S3 is left alone before a request
	// tries it again: an outage costs one timeout per this period, not one
	// per request.
	s3RetryAfter = 5 * time.Second
)

// errS3Down is returned by Lease while the tier is resting after a failure.
var errS3Down = errors.New("s3 cache tier unavailable")

type s3Tier struct {
	c       *minio.Client
	bucket  string
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	corrupt prometheus.Counter

	// downUntil is when, in Unix nanoseconds, S3 may be tried again after
	// a failure; 0 when healthy. out is true from a failure to the next
	// success, so an outage logs one warning and its end one line.
	downUntil atomic.Int64
	out       atomic.Bool
}

// leasingS3Tier is an s3Tier that also coalesces renders across processes.
type leasingS3Tier struct {
	*s3Tier
	ttl    time.Duration
	poll   time.Duration
	holder string
}

// NewS3Tier keeps entries in bucket under prefix (say "results/"), for
// every replica that shares them. Each call to S3 is bounded by timeout. It
// never fails: a failing S3 (unreachable, 5xx, access denied, timeout)
// makes Get miss and Set skip, with one warning per outage, so the service
// keeps working on its local tiers.
//
// With leaseTTL > 0 the tier is a Leaser: concurrent misses of one key on
// several replicas render once, the other replicas waiting up to about
// leaseTTL for the result; a holder that dies is taken over after leaseTTL.
// It should exceed a slow render (30 s is a fair default). With leaseTTL <=
// 0 every replica renders its own misses. m and log may be nil.
func NewS3Tier(client *minio.Client, bucket, prefix string, timeout, leaseTTL time.Duration, m *metrics.Metrics, log *slog.Logger) Tier {
	m = orDiscard(m)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &s3Tier{c: client, bucket: bucket, prefix: prefix, timeout: timeout, log: log, corrupt: m.CacheCorrupt}
	if leaseTTL <= 0 {
		return t
	}
	host, _ := os.Hostname()
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	return &leasingS3Tier{
		s3Tier: t,
		ttl:    leaseTTL,
		// Waiters learn of a result within a poll; on loopback or in one
		// region a poll (a GET and a HEAD) costs a millisecond or two.
		poll:   min(max(leaseTTL/100, 10*time.Millisecond), 100*time.Millisecond),
		holder: fmt.Sprintf("%s/%d/%x", host, os.Getpid(), nonce),
	}
}

func (t *s3Tier) Name() string { return metrics.TierS3 }

// Local is false: a look-up is a network round trip, so it goes through
// the flight, coalesced and under the hang-up watch.
func (t *s3Tier) Local() bool { return false }

func (t *s3Tier) objectName(key string) string {
	n := entryName(key)
	return t.prefix + n[0:2] + "/" + n[2:4] + "/" + n
}

func (t *s3Tier) leaseName(key string) string { return t.prefix + leaseDir + entryName(key) }

// usable is false while S3 rests after a failure.
func (t *s3Tier) usable() bool {
	until := t.downUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// result records how a call to S3 went. Errors of the caller's own
// making (it went away) say nothing about S3; a missing object or a lost
// race for a lease is an answer, not a failure.
func (t *s3Tier) result(caller context.Context, err error) {
	if err == nil || isMissing(err) || isPrecondition(err) {
		t.downUntil.Store(0)
		if t.out.Swap(false) {
			t.log.Info("s3 cache tier usable again", "bucket", t.bucket)
		}
		return
	}
	if caller.Err() != nil {
		return
	}
	t.downUntil.Store(time.Now().Add(s3RetryAfter).UnixNano())
	if !t.out.Swap(true) {
		t.log.Warn("s3 cache tier failing; serving from the local tiers until it answers again",
			"bucket", t.bucket, "retry_after", s3RetryAfter, "err", err)
	}
}

func isMissing(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

// isPrecondition is a conditional write or read that did not hold: the
// lease exists (If-None-Match: *), or it changed (If-Match). S3 answers 409
// to two conditional writes racing for one key.
func isPrecondition(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusPreconditionFailed || r.StatusCode == http.StatusConflict ||
		r.Code == minio.PreconditionFailed
}

type loaded int

const (
	absent loaded = iota
	found
	damaged
)

// load reads key's entry without counting or logging a damaged one.
func (t *s3Tier) load(ctx context.Context, key string) ([]byte, loaded) {
	if !t.usable() {
		return nil, absent
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var raw []byte
	obj, err := t.c.GetObject(cctx, t.bucket, t.objectName(key), minio.GetObjectOptions{})
	if err == nil {
		raw, err = io.ReadAll(obj)
		obj.Close()
	}
	t.result(ctx, err)
	if err != nil {
		return nil, absent
	}
	if v, ok := verify(raw); ok {
		return v, found
	}
	return nil, damaged
}

// Get never serves a damaged object: it is counted, logged and reported as
// a miss, and the render that follows overwrites it.
func (t *s3Tier) Get(ctx context.Context, key string) ([]byte, bool) {
	v, st := t.load(ctx, key)
	if st == damaged {
		t.corrupt.Inc()
		t.log.WarnContext(ctx, "damaged s3 cache entry ignored; it is re-rendered and overwritten",
			"bucket", t.bucket, "object", t.objectName(key))
	}
	return v, st == found
}

func (t *s3Tier) Set(ctx context.Context, key string, v []byte) {
	if !t.usable() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	buf := encodeEntry(v)
	_, err := t.c.PutObject(cctx, t.bucket, t.objectName(key), bytes.NewReader(buf), int64(len(buf)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	t.result(ctx, err)
}

// Purge removes the group's results: SourceKey's object names start with
// the group within their shard, so one listing of that prefix finds them
// all, and one multi-object delete per thousand removes them. The leases
// are left: a lease names a key being rendered and expires on its own.
func (t *s3Tier) Purge(ctx context.Context, group string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	prefix := t.prefix + group[0:2] + "/" + group[2:4] + "/" + group + "-"
	// A source has as many results as variants were asked of it (tens,
	// hundreds): listed whole, then deleted.
	var names []minio.ObjectInfo
	for o := range t.c.ListObjects(cctx, t.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			t.result(ctx, o.Err)
			return 0, o.Err
		}
		names = append(names, o)
	}
	queue := make(chan minio.ObjectInfo, len(names))
	for _, o := range names {
		queue <- o
	}
	close(queue)
	removed := len(names)
	var errs []error
	for e := range t.c.RemoveObjects(cctx, t.bucket, queue, minio.RemoveObjectsOptions{}) {
		removed--
		errs = append(errs, e.Err)
	}
	err := errors.Join(errs...)
	t.result(ctx, err)
	return removed, err
}

// Close has nothing to release: the client belongs to the caller.
func (t *s3Tier) Close() error { return nil }

// Lease creates the lease object only if there is none (If-None-Match: *),
// or replaces an expired one only if it is still the one seen expired
// (If-Match on its ETag), so of all the replicas racing for it exactly one
// wins. The winner then looks for the result once more: the previous
// holder may have stored it and released the lease just before.
func (t *leasingS3Tier) Lease(ctx context.Context, key string) (func(), bool, error) {
	if !t.usable() {
		return nil, false, errS3Down
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	name := t.leaseName(key)
	etag, err := t.putLease(cctx, name, "")
	if isPrecondition(err) {
		// Held. By a live holder, or by one that died: take that one over.
		var info minio.ObjectInfo
		info, err = t.c.StatObject(cctx, t.bucket, name, minio.StatObjectOptions{})
		switch {
		case err != nil:
			// Released meanwhile (missing) or S3 failing: not ours.
		case leaseExpired(info, time.Now()):
			etag, err = t.putLease(cctx, name, info.ETag)
		default:
			t.result(ctx, nil)
			return nil, false, nil
		}
	}
	t.result(ctx, err)
	switch {
	case isMissing(err) || isPrecondition(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	release := t.releaser(ctx, name, etag)
	if _, st := t.load(ctx, key); st == found {
		release()
		return nil, false, nil
	}
	return release, true, nil
}

// putLease writes a lease expiring in ttl: only if none exists when
// ifMatch is empty, else only over the object with that ETag.
func (t *leasingS3Tier) putLease(ctx context.Context, name, ifMatch string) (string, error) {
	expires := time.Now().Add(t.ttl)
	body := "holder " + t.holder + "\nexpires " + expires.UTC().Format(time.RFC3339Nano) + "\n"
	opts := minio.PutObjectOptions{
		ContentType:  "text/plain",
		UserMetadata: map[string]string{leaseExpiresMeta: strconv.FormatInt(expires.UnixMilli(), 10)},
	}
	if ifMatch == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(ifMatch)
	}
	info, err := t.c.PutObject(ctx, t.bucket, name, strings.NewReader(body), int64(len(body)), opts)
	return info.ETag, err
}

// leaseExpired reads the expiry the holder wrote. A lease without one (not
// ours, or damaged) has expired, so it cannot block renders forever.
func leaseExpired(info minio.ObjectInfo, now time.Time) bool {
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, leaseExpiresMeta) {
			ms, err := strconv.ParseInt(v, 10, 64)
			return err != nil || now.UnixMilli() >= ms
		}
	}
	return true
}

// releaser deletes the lease if it is still ours (same ETag): a holder
// slower than the TTL must not delete the lease of the replica that took
// over. The check and the delete are two calls; in the gap another
// replica could only have taken over an expired lease, whose render then
// shares the key with ours.
func (t *leasingS3Tier) releaser(ctx context.Context, name, etag string) func() {
	ctx = context.WithoutCancel(ctx)
	return func() {
		cctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		info, err := t.c.StatObject(cctx, t.bucket, name, minio.StatObjectOptions{})
		if err == nil && info.ETag == etag {
			err = t.c.RemoveObject(cctx, t.bucket, name, minio.RemoveObjectOptions{})
		}
		t.result(ctx, err)
	}
}

// Wait polls for the holder's result and its lease until the result
// arrives, the lease is gone or expired, or about a TTL passed (a live
// holder either delivers or lets its lease expire within that).
func (t *leasingS3Tier) Wait(ctx context.Context, key string) ([]byte, bool) {
	deadline := time.Now().Add(t.ttl + t.poll)
	name := t.leaseName(key)
	tick := time.NewTicker(t.poll)
	defer tick.Stop()
	for {
		if v, st := t.load(ctx, key); st == found {
			return v, true
		}
		if !t.usable() || !t.held(ctx, name) {
			// The holder may have stored its result and released its lease
			// between our two looks.
			v, st := t.load(ctx, key)
			return v, st == found
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-tick.C:
		}
	}
}

// held says whether name is a lease that has not expired.
func (t *leasingS3Tier) held(ctx context.Context, name string) bool {
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	info, err := t.c.StatObject(cctx, t.bucket, name, minio.StatObjectOptions{})
	t.result(ctx, err)
	return err == nil && !leaseExpired(info, time.Now())
}
