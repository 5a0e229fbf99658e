package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/metrics"
)

// deadline bounds every wait for the workers.
const deadline = 30 * time.Second

// journal records the work the receiver asks for, in order.
type journal struct {
	mu      sync.Mutex
	work    []string
	forgot  []string
	running map[string]bool
	overlap bool // two works of one key at once
	block   chan struct{}
}

func newJournal() *journal { return &journal{running: map[string]bool{}} }

func (j *journal) do(kind string) func(context.Context, string) error {
	return func(_ context.Context, rel string) error {
		j.mu.Lock()
		if j.running[rel] {
			j.overlap = true
		}
		j.running[rel] = true
		block := j.block
		j.mu.Unlock()
		if block != nil {
			<-block
		}
		j.mu.Lock()
		j.work = append(j.work, kind+" "+rel)
		delete(j.running, rel)
		j.mu.Unlock()
		if strings.Contains(rel, "fail") {
			return errors.New("render failed")
		}
		return nil
	}
}

func (j *journal) deps(m *metrics.Metrics) Deps {
	return Deps{
		Forget:  func(rel string) { j.mu.Lock(); j.forgot = append(j.forgot, rel); j.mu.Unlock() },
		Warm:    j.do("warm"),
		Purge:   j.do("purge"),
		Metrics: m,
	}
}

func body(records ...string) []byte {
	return []byte(`{"Records":[` + strings.Join(records, ",") + `]}`)
}

func event(name, key, seq string) string {
	return fmt.Sprintf(`{"eventName":%q,"s3":{"bucket":{"name":"photos"},"object":{"key":%q,"sequencer":%q}}}`, name, key, seq)
}

// waitOutcomes waits until n events have ended with outcome, or fails.
func waitOutcomes(t *testing.T, m *metrics.Metrics, kind, outcome string, n float64) {
	t.Helper()
	end := time.Now().Add(deadline)
	for testutil.ToFloat64(m.Events.WithLabelValues(kind, outcome)) < n {
		if time.Now().After(end) {
			t.Fatalf("%s/%s: %v events after %v, want %v", kind, outcome, testutil.ToFloat64(m.Events.WithLabelValues(kind, outcome)), deadline, n)
		}
		time.Sleep(time.Millisecond) // a poll with a deadline, not a timing assumption
	}
}

func start(t *testing.T, r *Receiver, workers int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, workers); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(deadline):
			t.Error("workers did not stop")
		}
	})
}

var scope = Scope{Bucket: "photos", Prefix: "originals/", Own: []string{"results/"}}

func TestReceiverWorksEachEventOnce(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	j := newJournal()
	r := NewReceiver(scope, j.deps(m))
	start(t, r, 2)
	up := body(event("s3:ObjectCreated:Put", "originals/cat.jpg", "01"))
	sum, err := r.Receive(up)
	if err != nil || sum != (Summary{Queued: 1}) {
		t.Fatalf("first delivery: %+v, %v", sum, err)
	}
	waitOutcomes(t, m, metrics.EventCreated, metrics.EventDone, 1)
	// S3 delivers at least once: the same event again is known.
	if sum, err = r.Receive(up); err != nil || sum != (Summary{Duplicate: 1}) {
		t.Fatalf("second delivery: %+v, %v", sum, err)
	}
	// A new upload of the same key is a new event.
	if sum, err = r.Receive(body(event("s3:ObjectCreated:Put", "originals/cat.jpg", "02"))); err != nil || sum.Queued != 1 {
		t.Fatalf("new upload: %+v, %v", sum, err)
	}
	waitOutcomes(t, m, metrics.EventCreated, metrics.EventDone, 2)
	j.mu.Lock()
	defer j.mu.Unlock()
	if got := strings.Join(j.work, ","); got != "warm cat.jpg,warm cat.jpg" {
		t.Errorf("work %q", got)
	}
	if got := strings.Join(j.forgot, ","); got != "cat.jpg,cat.jpg" {
		t.Errorf("forgot %q: the identity must be dropped once per new event", got)
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues(metrics.EventCreated, metrics.EventDuplicate)); n != 1 {
		t.Errorf("%v duplicates counted", n)
	}
}

func TestReceiverKeepsOrderPerKey(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	j := newJournal()
	j.block = make(chan struct{})
	r := NewReceiver(scope, j.deps(m))
	start(t, r, 4)
	var recs []string
	for i := range 6 {
		name := "s3:ObjectCreated:Put"
		if i%2 == 1 {
			name = "s3:ObjectRemoved:Delete"
		}
		recs = append(recs, event(name, "originals/cat.jpg", fmt.Sprintf("%02d", i)))
	}
	recs = append(recs, event("s3:ObjectCreated:Put", "originals/dog.jpg", "07"))
	if _, err := r.Receive(body(recs...)); err != nil {
		t.Fatal(err)
	}
	close(j.block)
	waitOutcomes(t, m, metrics.EventRemoved, metrics.EventDone, 3)
	waitOutcomes(t, m, metrics.EventCreated, metrics.EventDone, 4)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.overlap {
		t.Error("two events of one key were worked at once")
	}
	var cat []string
	for _, w := range j.work {
		if strings.HasSuffix(w, "cat.jpg") {
			cat = append(cat, strings.Fields(w)[0])
		}
	}
	if got := strings.Join(cat, ","); got != "warm,purge,warm,purge,warm,purge" {
		t.Errorf("cat.jpg's work in the order %s, want the events' order", got)
	}
}

func TestReceiverIgnoresWhatIsNotItsOwn(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	j := newJournal()
	r := NewReceiver(scope, j.deps(m))
	sum, err := r.Receive(body(
		event("s3:ObjectCreated:Put", "results/ab/cd/x", "1"),
		event("s3:ObjectCreated:Put", "elsewhere/cat.jpg", "2"),
		event("s3:ObjectAccessed:Get", "originals/cat.jpg", "3"),
		`{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"other"},"object":{"key":"originals/cat.jpg"}}}`,
	))
	if err != nil || sum != (Summary{Ignored: 4}) {
		t.Fatalf("%+v, %v", sum, err)
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues(metrics.EventCreated, metrics.EventIgnored)); n != 3 {
		t.Errorf("%v created events ignored, want 3", n)
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues(metrics.EventOther, metrics.EventIgnored)); n != 1 {
		t.Errorf("%v other events ignored, want 1", n)
	}
	if len(j.forgot) != 0 {
		t.Errorf("forgot %v", j.forgot)
	}
}

func TestReceiverQueueIsBounded(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	j := newJournal()
	r := NewReceiver(scope, j.deps(m)) // no workers: nothing leaves the queue
	var recs []string
	for i := range QueueCapacity + 2 {
		recs = append(recs, event("s3:ObjectCreated:Put", fmt.Sprintf("originals/%d.jpg", i), "1"))
	}
	sum, err := r.Receive(body(recs...))
	if !errors.Is(err, ErrFull) || sum.Queued != QueueCapacity {
		t.Fatalf("%+v, %v: want %d queued and ErrFull", sum, err, QueueCapacity)
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues(metrics.EventCreated, metrics.EventDropped)); n != 1 {
		t.Errorf("%v dropped, want 1 (the rest is not looked at)", n)
	}
	// The sender retries the whole body: what was queued is known, the
	// rest still does not fit.
	sum, err = r.Receive(body(recs...))
	if !errors.Is(err, ErrFull) || sum.Duplicate != QueueCapacity {
		t.Fatalf("retry: %+v, %v", sum, err)
	}
	// Once the workers drain it, the retry goes through.
	start(t, r, 2)
	waitOutcomes(t, m, metrics.EventCreated, metrics.EventDone, QueueCapacity)
	sum, err = r.Receive(body(recs...))
	if err != nil || sum.Queued != 2 || sum.Duplicate != QueueCapacity {
		t.Fatalf("after the drain: %+v, %v", sum, err)
	}
}

func TestReceiverCountsFailures(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	j := newJournal()
	r := NewReceiver(scope, j.deps(m))
	start(t, r, 1)
	if _, err := r.Receive(body(event("s3:ObjectRemoved:Delete", "originals/fail.jpg", "1"))); err != nil {
		t.Fatal(err)
	}
	waitOutcomes(t, m, metrics.EventRemoved, metrics.EventFailed, 1)
}
