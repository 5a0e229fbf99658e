// Package metrics owns every Prometheus collector of image-proxy. Collectors
// are registered on a registry the caller creates; nothing here is global.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"image-proxy/imageformat"
)

// Request kinds, the only values of the "kind" label.
const (
	KindPassthrough = "passthrough"
	KindTransform   = "transform"
	KindError       = "error"
	KindConvert     = "convert" // POST /convert answered 200
	KindBulk        = "bulk"    // POST /bulk streamed (items fail in their parts)
	KindEvents      = "events"  // POST /events/s3 answered 200
	KindPurge       = "purge"   // POST /purge answered (502: a tier could not purge)
	KindJSON        = "json"    // GET/HEAD ?format=json answered (200, 304)
)

// Cache tiers, the only values of the "tier" label.
const (
	TierMemory = "memory"
	TierDisk   = "disk"
	TierS3     = "s3"
)

// Fallback results, the only values of the "result" label of FallbackRequests.
const (
	FallbackOK       = "ok"
	FallbackNotFound = "not_found"
	FallbackError    = "error"
	FallbackTooLarge = "too_large"
	FallbackTimeout  = "timeout"
)

// Cache look-up results, the only values of the "result" label of
// CacheRequests.
const (
	StoredDecodeRejected = "rejected"
	StoredDecodeStored   = "stored"
	StoredDecodeDropped  = "dropped"
	StoredDecodeFailed   = "failed"
)

const (
	CacheHit  = "hit"
	CacheMiss = "miss"
)

// Render lease outcomes, the only values of the "result" label of
// CacheLeases: a miss on a shared tier either rendered holding the
// fleet-wide lease, was served the result another replica rendered, or
// rendered without a lease (the shared tier failed, or the holder did not
// deliver within the wait bound).
const (
	LeaseWon      = "won"
	LeaseShared   = "shared"
	LeaseBypassed = "bypassed"
)

// Refusal reasons, the only values of the "reason" label of Refusals: a
// request the operator's controls (presets, quality, allowed sizes, signed
// URLs) turned away.
const (
	RefusalUnknownPreset     = "unknown_preset"
	RefusalQualityNotAllowed = "quality_not_allowed"
	RefusalSizeNotAllowed    = "size_not_allowed"
	RefusalSignatureMissing  = "signature_missing"
	RefusalSignatureInvalid  = "signature_invalid"
)

// Stat cache results, the only values of the "result" label of
// StatCacheLookups: answered from memory, or a stat system call (not
// cached yet, invalidated by a watch event or the age limit, or in a
// directory that cannot be watched).
const (
	StatCacheHit  = "hit"
	StatCacheStat = "stat"
)

// S3 identity cache results, the only values of the "result" label of
// S3StatCacheLookups: answered from memory (an object or a remembered
// absence), or by a HEAD request (not cached, expired, dropped by an
// event, or the cache is off).
const (
	S3StatCacheHit  = "hit"
	S3StatCacheHead = "head"
)

// Disk write failures, the only values of the "reason" label of
// CacheDiskWriteFailures: the volume (or the user's quota) was full, or
// anything else (read-only, permission denied, I/O error, directory gone).
const (
	DiskWriteFull  = "full"
	DiskWriteError = "error"
)

// S3 event kinds, the only values of the "kind" label of Events: an
// object created (uploaded, replaced, copied), removed, or any other event
// (an access, a tag, S3's test event), which is ignored.
const (
	EventCreated = "created"
	EventRemoved = "removed"
	EventOther   = "other"
)

// S3 event outcomes, the only values of the "outcome" label of Events:
// every event ends in exactly one. done and failed are the work's
// (warm for created, purge for removed); ignored is the recursion guard
// and the scope (another bucket, outside the prefix, the server's own
// prefixes, other kinds); duplicate a repeated delivery; dropped refused
// with 503 because the queue was full (the sender retries).
const (
	EventDone      = "done"
	EventFailed    = "failed"
	EventIgnored   = "ignored"
	EventDuplicate = "duplicate"
	EventDropped   = "dropped"
)

// What asked for a purge, the only values of the "trigger" label of
// Purges: POST /purge, or an S3 deletion event.
const (
	PurgeRequest = "request"
	PurgeEvent   = "event"
)

// Transform results, the only values of the "result" label of Transforms.
const (
	TransformOK    = "ok"
	TransformError = "error"
)

// Who asked for a render, the only values of the "work" label of Transforms
// and TransformDuration: a request (GET, bulk, convert) someone waits for,
// or a warm (`image-proxy warm`, its --watch, IMAGE_PROXY_WARM_ON_CHANGE)
// nobody waits for. Alerts on transform time select live work: a warm of
// large sources is slow by design and keeps no visitor waiting.
const (
	WorkLive = "live"
	WorkWarm = "warm"
)

// The bounded label sets New creates every series of, so that each exists
// at 0 from the first scrape: a series that appears only when first counted
// leaves dashboards on "no data" and makes rate() and ratios in alerts
// evaluate to nothing instead of 0.
var (
	Kinds            = []string{KindPassthrough, KindTransform, KindError, KindConvert, KindBulk, KindEvents, KindPurge, KindJSON}
	Tiers            = []string{TierMemory, TierDisk, TierS3}
	CacheResults     = []string{CacheHit, CacheMiss}
	LeaseResults     = []string{LeaseWon, LeaseShared, LeaseBypassed}
	TransformResults = []string{TransformOK, TransformError}
	Works            = []string{WorkLive, WorkWarm}
	RefusalReasons   = []string{RefusalUnknownPreset, RefusalQualityNotAllowed, RefusalSizeNotAllowed,
		RefusalSignatureMissing, RefusalSignatureInvalid}
	FallbackResults  = []string{FallbackOK, FallbackNotFound, FallbackError, FallbackTooLarge, FallbackTimeout}
	StatCacheResults = []string{StatCacheHit, StatCacheStat}
	S3StatResults    = []string{S3StatCacheHit, S3StatCacheHead}
	DiskWriteReasons = []string{DiskWriteFull, DiskWriteError}
	// StoredDecodeResults: look-ups (hit, miss, rejected), then keeping.
	StoredDecodeResults = []string{CacheHit, CacheMiss, StoredDecodeRejected, StoredDecodeStored, StoredDecodeDropped, StoredDecodeFailed}
	EventKinds          = []string{EventCreated, EventRemoved, EventOther}
	EventOutcomes       = []string{EventDone, EventFailed, EventIgnored, EventDuplicate, EventDropped}
	PurgeTriggers       = []string{PurgeRequest, PurgeEvent}
	// HTTPCodes are the statuses the image handler answers, by kind. Codes
	// are only bounded per kind, and a code that cannot occur for a kind
	// (a 404 counted as a transform) would be a misleading series.
	HTTPCodes = map[string][]string{
		KindPassthrough: {"200", "206", "304", "416"},
		KindTransform:   {"200", "304"},
		KindError:       {"400", "401", "403", "404", "405", "413", "415", "422", "500", "502", "503", "504"},
		KindConvert:     {"200"},
		KindBulk:        {"200"},
		KindEvents:      {"200"},
		KindPurge:       {"200", "502"},
		KindJSON:        {"200", "304"},
	}
)

// OutputFormats are the values of the format label: the names of the
// formats a render can produce, taken from the format table so that a
// format added there is counted from the first scrape with no list to
// edit here. A failed render of an unresolved format is labelled "source"
// and is left to appear when it happens.
func OutputFormats() []string {
	var names []string
	for _, f := range imageformat.Outputs() {
		names = append(names, f.String())
	}
	return names
}

// Image work spans a few milliseconds (memory hits) to tens of seconds
// (progressive 50 MP sources under load).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics groups the collectors. Fields are exported so that callers record
// directly; label values must come from the constants above or from a
// bounded set (status codes, output formats).
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests       *prometheus.CounterVec   // code, kind
	HTTPDuration       *prometheus.HistogramVec // kind
	CacheRequests      *prometheus.CounterVec   // tier, result (hit|miss)
	CacheSizeBytes     *prometheus.GaugeVec     // tier
	CacheItems         *prometheus.GaugeVec     // tier
	CacheEvictions     *prometheus.CounterVec   // tier
	CacheCorrupt       prometheus.Counter       // damaged disk or S3 entries dropped
	CacheLeases        *prometheus.CounterVec   // result (won|shared|bypassed)
	Transforms         *prometheus.CounterVec   // format, result (ok|error), work (live|warm)
	TransformDuration  *prometheus.HistogramVec // format, work (live|warm)
	TransformsInFlight prometheus.Gauge
	QueueRejections    prometheus.Counter
	QueueWaiting       prometheus.Gauge
	FallbackRequests   *prometheus.CounterVec // result
	Refusals           *prometheus.CounterVec // reason
	StatCacheLookups   *prometheus.CounterVec // result (hit|stat)
	StatCacheWatches   prometheus.Gauge       // directories watched for the stat cache
	S3StatCacheLookups *prometheus.CounterVec // result (hit|head)
	// Writes the disk tier attempted and could not make, by reason
	// (full|error); it keeps serving what it holds and retries later.
	CacheDiskWriteFailures *prometheus.CounterVec
	Events                 *prometheus.CounterVec // kind (created|removed|other), outcome
	Purges                 *prometheus.CounterVec // trigger (request|event): sources purged
	PurgedEntries          *prometheus.CounterVec // tier: stored results removed by purges
	// The decode cache (transform): renders that found their source
	// decoded (or being decoded) or decoded it, and the bytes it holds.
	DecodeCacheRequests  *prometheus.CounterVec // result (hit|miss)
	DecodeCacheSizeBytes prometheus.Gauge
	// Persisted decodes (transform, kept in the persistent tiers).
	StoredDecodes      *prometheus.CounterVec // result (StoredDecodeResults)
	LibvipsMemoryBytes prometheus.GaugeFunc
	LibvipsOpenFiles   prometheus.GaugeFunc
}

// addDecodes makes the decode cache's and the persisted decodes' metrics.
func (m *Metrics) addDecodes(f factory) {
	m.DecodeCacheRequests = f.counterVec("image_proxy_decode_cache_requests_total",
		"Renders of a still image by whether its decoded source was reused (hit: decoded or being decoded by another render) or decoded (miss).", "result")
	m.DecodeCacheSizeBytes = f.gauge("image_proxy_decode_cache_size_bytes",
		"Bytes of decoded sources held for reuse by later variants.")
	m.StoredDecodes = f.counterVec("image_proxy_stored_decodes_total",
		"Persisted decodes looked up (hit, miss, rejected: damaged or not the load's) and kept after a render (stored, dropped: too many stores pending, failed).", "result")
}

// VipsStats reports libvips' own tracked memory and open files.
type VipsStats func() (memBytes, openFiles int64)

// New builds every collector on reg, plus the Go and process collectors.
// vips may be nil (tests without libvips).
func New(reg *prometheus.Registry, vips VipsStats) *Metrics {
	f := promauto(reg)
	m := &Metrics{
		Registry: reg,
		HTTPRequests: f.counterVec("image_proxy_http_requests_total",
			"HTTP requests answered, by status code and kind.", "code", "kind"),
		HTTPDuration: f.histogramVec("image_proxy_http_request_duration_seconds",
			"Time to answer an HTTP request, by kind.", "kind"),
		CacheRequests: f.counterVec("image_proxy_cache_requests_total",
			"Result cache look-ups, by tier and result.", "tier", "result"),
		CacheSizeBytes: f.gaugeVec("image_proxy_cache_size_bytes",
			"Bytes held by each cache tier.", "tier"),
		CacheItems: f.gaugeVec("image_proxy_cache_items",
			"Entries held by each cache tier.", "tier"),
		CacheEvictions: f.counterVec("image_proxy_cache_evictions_total",
			"Entries evicted from each cache tier to stay within its capacity.", "tier"),
		CacheCorrupt: f.counter("image_proxy_cache_corrupt_entries_total",
			"Damaged disk or S3 cache entries detected, never served, and re-rendered."),
		CacheLeases: f.counterVec("image_proxy_cache_leases_total",
			"Misses on a shared cache tier by render lease outcome: rendered holding the lease, served another replica's render, or rendered without a lease.", "result"),
		CacheDiskWriteFailures: f.counterVec("image_proxy_cache_disk_write_failures_total",
			"Disk cache writes that failed, by reason: full (no space or quota left: the tier evicts to fit and backs off) or error (read-only, permission denied, I/O: the tier backs off). Stored entries are still served.", "reason"),
		Events: f.counterVec("image_proxy_events_total",
			"S3 event notifications' events (POST /events/s3) by kind and how each ended: done or failed (its warm or purge), ignored (out of scope, the server's own writes, other kinds), duplicate (delivered again), dropped (queue full: answered 503).", "kind", "outcome"),
		Purges: f.counterVec("image_proxy_purges_total",
			"Sources whose stored results were purged, by trigger: POST /purge (request) or an S3 deletion event (event).", "trigger"),
		PurgedEntries: f.counterVec("image_proxy_purged_entries_total",
			"Stored results removed by purges, by cache tier.", "tier"),
		Transforms: f.counterVec("image_proxy_transforms_total",
			"Transforms run, by output format, result and work (live: for a request; warm: pre-rendered by a warm).", "format", "result", "work"),
		TransformDuration: f.histogramVec("image_proxy_transform_duration_seconds",
			"Time spent in libvips for one transform, by output format and work; a warmed variant counts its own resize and encode plus an equal share of the decode it shared.", "format", "work"),
		TransformsInFlight: f.gauge("image_proxy_transforms_in_flight",
			"Transforms running now: live renders, and warms rendering their variants one at a time."),
		QueueRejections: f.counter("image_proxy_transform_queue_rejections_total",
			"Requests refused with 503 because no transform slot freed up in time."),
		QueueWaiting: f.gauge("image_proxy_transform_queue_waiting",
			"Requests waiting for a transform slot now."),
		FallbackRequests: f.counterVec("image_proxy_fallback_requests_total",
			"Fetches from the fallback upstream, by result.", "result"),
		Refusals: f.counterVec("image_proxy_refusals_total",
			"Requests refused by the operator's controls (presets, quality, allowed sizes, signed URLs), by reason.", "reason"),
		StatCacheLookups: f.counterVec("image_proxy_stat_cache_lookups_total",
			"Descriptions of local originals for transforms: answered from the stat cache (hit) or by a stat system call (stat).", "result"),
		S3StatCacheLookups: f.counterVec("image_proxy_s3_stat_cache_lookups_total",
			"Descriptions of S3 originals for transforms: answered from the identity cache (hit, an absent key included) or by a HEAD request (head).", "result"),
		StatCacheWatches: f.gauge("image_proxy_stat_cache_watched_directories",
			"Directories of the root watched with inotify for the stat cache."),
	}
	m.addDecodes(f)
	m.initSeries()
	if vips != nil {
		m.registerVips(reg, vips)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerVips adds the gauges that read libvips' own counters.
func (m *Metrics) registerVips(reg *prometheus.Registry, vips VipsStats) {
	m.LibvipsMemoryBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "image_proxy_libvips_memory_bytes",
		Help: "Memory libvips tracks as allocated by itself (pixel buffers), apart from the Go heap.",
	}, func() float64 { mem, _ := vips(); return float64(mem) })
	m.LibvipsOpenFiles = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "image_proxy_libvips_open_files",
		Help: "Files libvips holds open.",
	}, func() float64 { _, files := vips(); return float64(files) })
	reg.MustRegister(m.LibvipsMemoryBytes, m.LibvipsOpenFiles)
}

func (m *Metrics) initSeries() {
	for _, kind := range Kinds {
		for _, code := range HTTPCodes[kind] {
			m.HTTPRequests.WithLabelValues(code, kind)
		}
		m.HTTPDuration.WithLabelValues(kind)
	}
	for _, tier := range Tiers {
		for _, r := range CacheResults {
			m.CacheRequests.WithLabelValues(tier, r)
		}
		m.CacheSizeBytes.WithLabelValues(tier)
		m.CacheItems.WithLabelValues(tier)
		m.CacheEvictions.WithLabelValues(tier)
	}
	for _, r := range LeaseResults {
		m.CacheLeases.WithLabelValues(r)
	}
	for _, r := range DiskWriteReasons {
		m.CacheDiskWriteFailures.WithLabelValues(r)
	}
	for _, f := range OutputFormats() {
		for _, w := range Works {
			for _, r := range TransformResults {
				m.Transforms.WithLabelValues(f, r, w)
			}
			m.TransformDuration.WithLabelValues(f, w)
		}
	}
	for _, r := range FallbackResults {
		m.FallbackRequests.WithLabelValues(r)
	}
	for _, r := range RefusalReasons {
		m.Refusals.WithLabelValues(r)
	}
	for _, r := range StatCacheResults {
		m.StatCacheLookups.WithLabelValues(r)
	}
	for _, r := range S3StatResults {
		m.S3StatCacheLookups.WithLabelValues(r)
	}
	for _, r := range CacheResults {
		m.DecodeCacheRequests.WithLabelValues(r)
	}
	for _, r := range StoredDecodeResults {
		m.StoredDecodes.WithLabelValues(r)
	}
	for _, k := range EventKinds {
		for _, o := range EventOutcomes {
			m.Events.WithLabelValues(k, o)
		}
	}
	for _, t := range PurgeTriggers {
		m.Purges.WithLabelValues(t)
	}
	for _, t := range Tiers {
		m.PurgedEntries.WithLabelValues(t)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

type factory struct{ reg *prometheus.Registry }

func promauto(reg *prometheus.Registry) factory { return factory{reg} }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: durationBuckets}, labels)
	f.reg.MustRegister(h)
	return h
}
