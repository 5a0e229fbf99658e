package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/internal/testsupport/miniotest"
	"image-proxy/metrics"
)

const hitS3 Status = "HIT-S3"

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// s3Env is one MinIO shared by the subtests, each in a bucket of its own.
type s3Env struct {
	srv     *miniotest.Server
	client  *minio.Client
	buckets atomic.Int64
}

func (e *s3Env) bucket(t *testing.T) string {
	return e.srv.Bucket(t, fmt.Sprintf("cache-test-%d", e.buckets.Add(1)))
}

// replica is one image-proxy process: its own memory tier, disk directory,
// flight group and metrics, and an S3 tier over the shared bucket.
type replica struct {
	c       Cache
	m       *metrics.Metrics
	logs    *lockedBuffer
	s3      Tier
	renders atomic.Int64
}

type replicaOpts struct {
	client   *minio.Client
	bucket   string
	diskDir  string // "" for no disk tier
	leaseTTL time.Duration
	timeout  time.Duration
	wrap     func(Tier) Tier
}

func newReplica(t *testing.T, o replicaOpts) *replica {
	t.Helper()
	r := &replica{m: metrics.New(prometheus.NewRegistry(), nil), logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	mem, err := NewMemoryTier(1<<20, 1<<20, r.m)
	if err != nil {
		t.Fatal(err)
	}
	tiers := []Tier{mem}
	if o.diskDir != "" {
		tiers = append(tiers, NewDiskTier(o.diskDir, 1<<20, r.m, log))
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	r.s3 = NewS3Tier(o.client, o.bucket, "results/", o.timeout, o.leaseTTL, r.m, log)
	if o.wrap != nil {
		r.s3 = o.wrap(r.s3)
	}
	r.c = New(append(tiers, r.s3), r.m)
	t.Cleanup(func() { r.c.Close() })
	return r
}

func (r *replica) fetch(t *testing.T, key string, val []byte) Status {
	t.Helper()
	got, st, err := r.c.Fetch(context.Background(), key, func(context.Context) ([]byte, error) {
		r.renders.Add(1)
		return val, nil
	})
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("fetch %s: %q, %v", key, got, err)
	}
	return st
}

func (e *s3Env) raw(t *testing.T, bucket, key string) []byte {
	t.Helper()
	obj, err := e.client.GetObject(context.Background(), bucket, "results/"+s3Path(key), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read object of %s: %v", key, err)
	}
	return b
}

func (e *s3Env) put(t *testing.T, bucket, name string, b []byte) {
	t.Helper()
	if _, err := e.client.PutObject(context.Background(), bucket, name, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// s3Path spells out the object name: sharded like the disk tier.
func s3Path(key string) string {
	n := entryName(key)
	return n[:2] + "/" + n[2:4] + "/" + n
}

func TestS3Tier(t *testing.T) {
	srv := miniotest.Start(t)
	e := &s3Env{srv: srv, client: srv.Client(t)}

	t.Run("WriteThroughAndHitAfterRestart", func(t *testing.T) { testS3WriteThrough(t, e) })
	t.Run("DamagedObjectNeverServed", func(t *testing.T) { testS3Damaged(t, e) })
	t.Run("LeaseBurstAcrossReplicas", func(t *testing.T) { testS3LeaseBurst(t, e) })
	t.Run("DeadHolderLeaseExpires", func(t *testing.T) { testS3DeadHolder(t, e) })
	t.Run("FailedRenderHandsOver", func(t *testing.T) { testS3FailedRender(t, e) })
	t.Run("HitLatency", func(t *testing.T) { testS3HitLatency(t, e) })
	t.Run("AccessDeniedDegrades", func(t *testing.T) {
		checkDegrades(t, clientFor(t, strings.TrimPrefix(srv.Endpoint, "http://"), srv.AccessKey, "not-the-secret"))
	})
}

func testS3WriteThrough(t *testing.T, e *s3Env) {
	bucket := e.bucket(t)
	val := []byte("rendered bytes")
	first := newReplica(t, replicaOpts{client: e.client, bucket: bucket, diskDir: t.TempDir(), leaseTTL: 30 * time.Second})
	if st := first.fetch(t, "k", val); st != StatusMiss {
		t.Fatalf("first fetch: %s", st)
	}
	if st := first.fetch(t, "k", val); st != hitMemory {
		t.Fatalf("second fetch: %s", st)
	}
	raw := e.raw(t, bucket, "k")
	if v, ok := verify(raw); !ok || !bytes.Equal(v, val) {
		t.Fatalf("object holds %q, want the value behind an IPC1 header", raw)
	}

	// A restarted replica (or another one) with empty local tiers finds
	// the value in the bucket and fills memory and disk with it.
	dir := t.TempDir()
	second := newReplica(t, replicaOpts{client: e.client, bucket: bucket, diskDir: dir, leaseTTL: 30 * time.Second})
	for i, want := range []Status{hitS3, hitMemory} {
		if st := second.fetch(t, "k", val); st != want {
			t.Errorf("restarted fetch %d: %s, want %s", i, st, want)
		}
	}
	second.c.Close()
	third := newReplica(t, replicaOpts{client: e.client, bucket: bucket, diskDir: dir, leaseTTL: 30 * time.Second})
	if st := third.fetch(t, "k", val); st != hitDisk {
		t.Errorf("the S3 hit was not promoted to disk: %s", st)
	}
	if n := first.renders.Load() + second.renders.Load() + third.renders.Load(); n != 1 {
		t.Errorf("%d renders, want 1", n)
	}
	for _, c := range []struct {
		r      *replica
		result string
		want   float64
	}{{first, "miss", 1}, {first, "hit", 0}, {second, "hit", 1}, {second, "miss", 0}, {third, "hit", 0}} {
		if got := testutil.ToFloat64(c.r.m.CacheRequests.WithLabelValues(metrics.TierS3, c.result)); got != c.want {
			t.Errorf("cache_requests{s3,%s} = %v, want %v", c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(first.m.CacheLeases.WithLabelValues(metrics.LeaseWon)); got != 1 {
		t.Errorf("first render: leases{won} = %v, want 1", got)
	}
	if logs := first.logs.String() + second.logs.String(); logs != "" {
		t.Errorf("a healthy tier logged:\n%s", logs)
	}
}

func testS3Damaged(t *testing.T, e *s3Env) {
	bucket := e.bucket(t)
	val := []byte("the good value")
	first := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: 30 * time.Second})
	first.fetch(t, "k", val)
	good := e.raw(t, bucket, "k")

	for name, bad := range map[string][]byte{
		"flipped bit": func() []byte { b := slices.Clone(good); b[len(b)-1] ^= 1; return b }(),
		"truncated":   good[:len(good)-3],
		"empty":       {},
		"not ours":    []byte("<html>a proxy's error page</html>"),
	} {
		e.put(t, bucket, "results/"+s3Path("k"), bad)
		r := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: 30 * time.Second})
		if st := r.fetch(t, "k", val); st != StatusMiss {
			t.Errorf("%s: %s, want a MISS that re-renders", name, st)
		}
		if r.renders.Load() != 1 {
			t.Errorf("%s: %d renders", name, r.renders.Load())
		}
		if got := testutil.ToFloat64(r.m.CacheCorrupt); got != 1 {
			t.Errorf("%s: corrupt counter %v, want 1", name, got)
		}
		if logs := r.logs.String(); strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "damaged s3 cache entry") {
			t.Errorf("%s: want one warning about the damaged entry, logs:\n%s", name, logs)
		}
		if !bytes.Equal(e.raw(t, bucket, "k"), good) {
			t.Errorf("%s: the damaged object was not overwritten by the render", name)
		}
		// And the next replica is served the repaired object.
		if st := newReplica(t, replicaOpts{client: e.client, bucket: bucket}).fetch(t, "k", val); st != hitS3 {
			t.Errorf("%s: after repair: %s", name, st)
		}
	}
}

func TestS3TierDownDegradesToLocalTiers(t *testing.T) {
	// A port nothing listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	t.Run("ConnectionRefused", func(t *testing.T) {
		checkDegrades(t, clientFor(t, refused, "access", "secret"))
	})

	// A server that accepts and never answers: every call ends at the
	// tier's timeout, and only the first one waits for it.
	hang := miniotest.Silent(t)
	t.Run("Hangs", func(t *testing.T) {
		checkDegrades(t, clientFor(t, hang, "access", "secret"))
	})
}

func clientFor(t *testing.T, addr, access, secret string) *minio.Client {
	t.Helper()
	client, err := minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(access, secret, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// checkDegrades renders and serves three keys from memory through an S3
// tier that cannot work, with one warning for the whole outage.
func checkDegrades(t *testing.T, client *minio.Client) {
	t.Helper()
	r := newReplica(t, replicaOpts{client: client, bucket: "results", timeout: 300 * time.Millisecond, leaseTTL: 30 * time.Second})
	for i, key := range []string{"a", "b", "c"} {
		val := []byte("value of " + key)
		if st := r.fetch(t, key, val); st != StatusMiss {
			t.Errorf("%s: %s", key, st)
		}
		if st := r.fetch(t, key, val); st != hitMemory {
			t.Errorf("%s again: %s, want it served from memory", key, st)
		}
		if n := r.renders.Load(); n != int64(i+1) {
			t.Errorf("after %s: %d renders", key, n)
		}
	}
	logs := r.logs.String()
	if strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "s3 cache tier failing") {
		t.Errorf("want exactly one warning for the outage, logs:\n%s", logs)
	}
	if strings.Contains(logs, "secret") {
		t.Errorf("a log line holds the secret key:\n%s", logs)
	}
	if got := testutil.ToFloat64(r.m.CacheLeases.WithLabelValues(metrics.LeaseBypassed)); got != 3 {
		t.Errorf("leases{bypassed} = %v, want 3 (one per miss)", got)
	}
}

// gate is an S3 tier that counts its misses into a total shared by the
// replicas, so that a test's render can hold until every replica of a
// burst has missed: the burst is then truly concurrent, however the
// goroutines are scheduled.
type gate struct {
	Tier
	misses *atomic.Int64
}

func (g *gate) Get(ctx context.Context, key string) ([]byte, bool) {
	v, ok := g.Tier.Get(ctx, key)
	if !ok {
		g.misses.Add(1)
	}
	return v, ok
}

// leasingGate keeps the inner tier's Leaser visible to the cache.
type leasingGate struct {
	*gate
	Leaser
}

func gated(misses *atomic.Int64) func(Tier) Tier {
	return func(inner Tier) Tier {
		g := &gate{Tier: inner, misses: misses}
		if l, ok := inner.(Leaser); ok {
			return leasingGate{g, l}
		}
		return g
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// burst sends perReplica concurrent identical requests to each of n
// replicas sharing one bucket, and returns the renders and the statuses.
func burst(t *testing.T, e *s3Env, n, perReplica int, leaseTTL time.Duration) (int64, map[Status]int) {
	t.Helper()
	bucket := e.bucket(t)
	var misses atomic.Int64
	var renders atomic.Int64
	replicas := make([]*replica, n)
	for i := range replicas {
		replicas[i] = newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: leaseTTL, wrap: gated(&misses)})
	}
	val := []byte("one variant")
	render := func(context.Context) ([]byte, error) {
		renders.Add(1)
		// Every replica has missed the bucket before the first render
		// finishes: the burst is concurrent.
		if !waitFor(10*time.Second, func() bool { return misses.Load() >= int64(n) }) {
			t.Errorf("only %d of %d replicas missed before the deadline", misses.Load(), n)
		}
		return val, nil
	}
	var mu sync.Mutex
	statuses := map[Status]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range replicas {
		for range perReplica {
			wg.Go(func() {
				<-start
				v, st, err := r.c.Fetch(context.Background(), "k", render)
				if err != nil || !bytes.Equal(v, val) {
					t.Errorf("fetch: %q, %v", v, err)
				}
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	return renders.Load(), statuses
}

func testS3LeaseBurst(t *testing.T, e *s3Env) {
	const replicas, perReplica = 3, 8
	with, stWith := burst(t, e, replicas, perReplica, 30*time.Second)
	without, stWithout := burst(t, e, replicas, perReplica, 0)
	t.Logf("burst of %d identical requests over %d replicas: %d render(s) with the lease %v, %d without %v",
		replicas*perReplica, replicas, with, stWith, without, stWithout)
	if with != 1 {
		t.Errorf("with the lease: %d renders, want 1", with)
	}
	if stWith[StatusMiss] != perReplica || stWith[hitS3] != (replicas-1)*perReplica {
		t.Errorf("with the lease: statuses %v, want one replica's requests MISS and the rest HIT-S3", stWith)
	}
	// Without it each replica's flight renders: the gate makes every
	// replica miss before any render ends.
	if without != replicas {
		t.Errorf("without the lease: %d renders, want %d (one per replica)", without, replicas)
	}
}

func testS3DeadHolder(t *testing.T, e *s3Env) {
	bucket := e.bucket(t)
	const ttl = 500 * time.Millisecond
	dead := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: ttl})
	// The holder takes the lease and dies before rendering.
	_, won, err := dead.s3.(Leaser).Lease(context.Background(), "k")
	if err != nil || !won {
		t.Fatalf("first lease: won=%v err=%v", won, err)
	}
	if _, won, err := dead.s3.(Leaser).Lease(context.Background(), "k"); won || err != nil {
		t.Fatalf("a held lease was taken again: won=%v err=%v", won, err)
	}
	alive := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: ttl})
	if st := alive.fetch(t, "k", []byte("v")); st != StatusMiss {
		t.Errorf("after the holder died: %s", st)
	}
	if alive.renders.Load() != 1 {
		t.Errorf("%d renders, want 1", alive.renders.Load())
	}
	if got := testutil.ToFloat64(alive.m.CacheLeases.WithLabelValues(metrics.LeaseWon)); got != 1 {
		t.Errorf("leases{won} = %v: the expired lease was not taken over", got)
	}
	// The taker released its lease: nothing is left behind.
	if _, err := e.client.StatObject(context.Background(), bucket, "results/lease/"+entryName("k"), minio.StatObjectOptions{}); !isMissing(err) {
		t.Errorf("lease object after release: %v", err)
	}
}

func testS3FailedRender(t *testing.T, e *s3Env) {
	bucket := e.bucket(t)
	a := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: 30 * time.Second})
	b := newReplica(t, replicaOpts{client: e.client, bucket: bucket, leaseTTL: 30 * time.Second})
	// a holds the lease while b waits; a's render fails, so b renders now,
	// not after the TTL.
	release, won, err := a.s3.(Leaser).Lease(context.Background(), "k")
	if err != nil || !won {
		t.Fatalf("lease: %v %v", won, err)
	}
	done := make(chan Status)
	go func() {
		_, st, err := b.c.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) {
			b.renders.Add(1)
			return []byte("v"), nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	if !waitFor(10*time.Second, func() bool {
		return testutil.ToFloat64(b.m.CacheRequests.WithLabelValues(metrics.TierS3, metrics.CacheMiss)) == 1
	}) {
		t.Fatal("b never looked in the bucket")
	}
	release() // a gave up: its render failed
	select {
	case st := <-done:
		if st != StatusMiss || b.renders.Load() != 1 {
			t.Errorf("b: %s after %d renders", st, b.renders.Load())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("b still waits after the lease was released")
	}
}

func testS3HitLatency(t *testing.T, e *s3Env) {
	bucket := e.bucket(t)
	m := metrics.New(prometheus.NewRegistry(), nil)
	disk := NewDiskTier(t.TempDir(), 64<<20, m, nil)
	defer disk.Close()
	s3 := NewS3Tier(e.client, bucket, "results/", 5*time.Second, 0, m, nil)
	val := bytes.Repeat([]byte("x"), 30<<10) // a typical 30 KB result
	ctx := context.Background()
	disk.Set(ctx, "k", val)
	s3.Set(ctx, "k", val)
	median := func(tier Tier) time.Duration {
		const n = 200
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			v, ok := tier.Get(ctx, "k")
			d[i] = time.Since(start)
			if !ok || !bytes.Equal(v, val) {
				t.Fatalf("%s: miss", tier.Name())
			}
		}
		slices.Sort(d)
		return d[n/2]
	}
	t.Logf("median of 200 hits of a 30 KB entry: disk %v, s3 (MinIO on loopback) %v", median(disk), median(s3))
}
