package events

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// QueueCapacity bounds the events waiting for a worker. An upload burst
// beyond it is answered 503, and the sender (MinIO's webhook, an
// EventBridge API destination) retries later, so nothing is lost and
// memory stays bounded: an item is a key and a few words.
const QueueCapacity = 1024

// rememberedIDs is how many handled events are remembered to tell a
// repeated delivery (S3's are at-least-once) from a new event.
const rememberedIDs = 8192

// ErrFull is the queue refusing an event: the sender should retry.
var ErrFull = errors.New("the event queue is full; retry later")

// Deps are the work an event causes, given by main.
type Deps struct {
	// Forget drops what the server remembers of the object at rel (the
	// S3 identity cache), at once, before the event is answered: the
	// next request for it asks the bucket.
	Forget func(rel string)
	// Warm renders rel's configured variants into the result tiers (and
	// the export), below live requests. Called for an upload.
	Warm func(ctx context.Context, rel string) error
	// Purge removes every stored variant of rel. Called for a deletion.
	Purge   func(ctx context.Context, rel string) error
	Metrics *metrics.Metrics // nil: counted nowhere
	Log     *slog.Logger     // nil: no log
}

// Summary is what one notification came to.
type Summary struct {
	Queued    int `json:"queued"`
	Duplicate int `json:"duplicate"`
	Ignored   int `json:"ignored"`
}

// Receiver takes notifications and works through their events with a
// few workers. It is safe for concurrent use.
type Receiver struct {
	scope Scope
	d     Deps
	count *prometheus.CounterVec

	mu       sync.Mutex
	pending  list.List       // of item, oldest first
	inFlight map[string]bool // keys a worker is on: one event of a key at a time, in order
	known    map[string]bool // ids pending, in flight or handled (idempotency)
	handled  list.List       // ids handled, oldest first, at most rememberedIDs
	ready    chan struct{}   // a token while pending may have an item a worker can take
}

type item struct {
	kind    Kind
	rel, id string
}

// NewReceiver acts on the events of scope through d; Run starts its
// workers.
func NewReceiver(scope Scope, d Deps) *Receiver {
	m := d.Metrics
	if m == nil {
		m = metrics.New(prometheus.NewRegistry(), nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{scope: scope, d: d, count: m.Events,
		inFlight: map[string]bool{}, known: map[string]bool{}, ready: make(chan struct{}, 1)}
}

// Receive parses body and queues its events; every event is counted once,
// when it ends. A body that is not a notification is an error wrapping
// ErrNotEvent (or naming the bad record); when the queue cannot take an
// event it is ErrFull, the events before it staying queued (a retry of
// the whole body finds them known).
func (r *Receiver) Receive(body []byte) (Summary, error) {
	recs, err := Parse(body)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	for _, rec := range recs {
		rel, why := r.scope.Rel(rec)
		if why != "" {
			sum.Ignored++
			r.count.WithLabelValues(rec.Kind.String(), metrics.EventIgnored).Inc()
			r.d.Log.Debug("s3 event ignored", "event", rec.Name, "bucket", rec.Bucket, "key", rec.Key, "reason", why)
			continue
		}
		switch r.enqueue(item{kind: rec.Kind, rel: rel, id: rec.id()}) {
		case errDuplicate:
			sum.Duplicate++
			r.count.WithLabelValues(rec.Kind.String(), metrics.EventDuplicate).Inc()
		case ErrFull:
			r.count.WithLabelValues(rec.Kind.String(), metrics.EventDropped).Inc()
			r.d.Log.Warn("s3 event refused: queue full", "event", rec.Name, "key", rec.Key, "capacity", QueueCapacity)
			return sum, ErrFull
		default:
			sum.Queued++
		}
	}
	return sum, nil
}

// id tells one event from another: a repeated delivery has the same.
func (rec Record) id() string {
	return rec.Kind.String() + "\x00" + rec.Bucket + "\x00" + rec.Key + "\x00" + rec.Sequencer + "\x00" + rec.ETag
}

var errDuplicate = errors.New("duplicate event")

// enqueue queues it unless its event is known or the queue is full. The
// object's identity is forgotten at once: a request after the answer
// already sees the new object (or its absence).
func (r *Receiver) enqueue(it item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known[it.id] {
		return errDuplicate
	}
	if r.pending.Len() >= QueueCapacity {
		return ErrFull
	}
	r.known[it.id] = true
	r.pending.PushBack(it)
	if r.d.Forget != nil {
		r.d.Forget(it.rel)
	}
	r.signal()
	return nil
}

// signal leaves a token for a waiting worker (mu held).
func (r *Receiver) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Run works through the queue with workers goroutines until ctx is done;
// events still queued then are dropped with the process (their senders
// got a 200: at-least-once ends here, and the identity cache's age bounds
// what a lost upload event costs).
func (r *Receiver) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				it, ok := r.take(ctx)
				if !ok {
					return
				}
				r.work(ctx, it)
			}
		})
	}
	wg.Wait()
}

// take waits for the oldest pending event whose key no worker is on.
func (r *Receiver) take(ctx context.Context) (item, bool) {
	for {
		r.mu.Lock()
		for e := r.pending.Front(); e != nil; e = e.Next() {
			it := e.Value.(item)
			if r.inFlight[it.rel] {
				continue
			}
			r.pending.Remove(e)
			r.inFlight[it.rel] = true
			if r.pending.Len() > 0 {
				r.signal()
			}
			r.mu.Unlock()
			return it, true
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return item{}, false
		case <-r.ready:
		}
	}
}

// work does it and counts how it ended.
func (r *Receiver) work(ctx context.Context, it item) {
	var err error
	switch it.kind {
	case Created:
		err = r.d.Warm(ctx, it.rel)
	case Removed:
		err = r.d.Purge(ctx, it.rel)
	}
	outcome := metrics.EventDone
	if err != nil {
		outcome = metrics.EventFailed
		r.d.Log.Warn("s3 event work failed", "kind", it.kind.String(), "path", it.rel, "err", err)
	}
	r.mu.Lock()
	delete(r.inFlight, it.rel)
	r.handled.PushBack(it.id)
	for r.handled.Len() > rememberedIDs {
		delete(r.known, r.handled.Remove(r.handled.Front()).(string))
	}
	if r.pending.Len() > 0 {
		r.signal() // an event of this key may be waiting
	}
	r.mu.Unlock()
	// Counted last: a test that waits for the count finds the work done.
	r.count.WithLabelValues(it.kind.String(), outcome).Inc()
}
