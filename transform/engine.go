package transform

import (
	"sync/atomic"
	"time"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vipsx"
)

// Engine renders with one set of encoder settings. It holds no libvips
// state of its own and is safe for concurrent use; its decoder keeps
// decoded sources for the next variants (IMAGE_PROXY_DECODE_CACHE_SIZE).
type Engine struct {
	cfg         Config
	decoder     *decode.Decoder
	obs         Observer
	files       *vipsx.VFiles // persisted decodes in libvips' format (persisted.go)
	running     atomic.Int64
	trimPending atomic.Bool
}

// New returns an Engine; cfg must be valid.
func New(cfg Config) *Engine { return NewObserved(cfg, Observer{}) }

// NewObserved returns an Engine whose decode cache reports to obs; cfg
// must be valid.
func NewObserved(cfg Config, obs Observer) *Engine {
	return newEngine(cfg, decode.Options{Observer: obs})
}

// newEngine builds the Engine and its decoder from cfg; o carries the
// decoder's observer, and in tests its clock and hooks.
func newEngine(cfg Config, o decode.Options) *Engine {
	e := &Engine{cfg: cfg, obs: o.Observer, files: &vipsx.VFiles{}}
	o.Budget, o.TTL, o.Idle = cfg.DecodeCacheSize, cfg.DecodeCacheTTL, e.trimIfIdle
	e.decoder = decode.New(o)
	return e
}

// Close drops the decode cache. Renders still running free what they use
// when they finish; call it once no render runs, before Shutdown.
func (e *Engine) Close() {
	e.decoder.Close()
	e.files.Close()
}

// fromStore and rejected report a kept decode read (persisted.go).
func (e *Engine) fromStore() {
	if e.obs.StoredDecode != nil {
		e.obs.StoredDecode(true)
	}
}

func (e *Engine) rejected() {
	if e.obs.StoredDecode != nil {
		e.obs.StoredDecode(false)
	}
}

// DecodeCacheBytes is the memory the decode cache holds now.
func (e *Engine) DecodeCacheBytes() int64 { return e.decoder.Bytes() }

// trimAfter is how long renders must have stopped before freed memory is
// handed back: long enough never to fire under steady load (the next render
// would only fault the pages back in), short enough that RSS falls soon
// after a burst.
const trimAfter = 2 * time.Second

// idle is called when a render ends; the last one out schedules a trim.
func (e *Engine) idle() {
	if e.running.Add(-1) != 0 || !e.trimPending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(trimAfter, func() {
		e.trimPending.Store(false)
		if e.running.Load() == 0 {
			releaseMemory()
		}
	})
}

// trimIfIdle hands memory back once the cache emptied with no render running.
func (e *Engine) trimIfIdle() {
	if e.running.Load() == 0 {
		releaseMemory()
	}
}
