package proxy

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/fault"
	"image-proxy/origin"
	"image-proxy/request"
)

// The parse memo: what an image request's target parses to, remembered by
// the exact target and the hint headers the parse reads, so a repeated URL
// (every cache hit behind a CDN) skips the path rules, /r/, the signature
// and the controls; and per target, the last variant's keys, so a hit on
// an unchanged source skips the variant, its key, its ETag and the
// SHA-256 of its group. Every input of a parse is in the memo's key and
// the parse reads nothing else (the settings are fixed at start), so an
// answer from the memo is the fresh parse's. Errors are never remembered:
// a bad URL takes its own path, with its counting, every time.
//
// It is bounded: memoSets × memoWays entries of targets up to
// memoMaxBytes, in a set-associative table of atomic pointers to
// immutable entries, so a look-up takes no lock. An insert replaces a way
// whose used bit is clear, clearing those it passes (a clock per set), so
// a URL asked again survives a spray of one-off URLs unless the spray
// outruns it in its own set; a spray then costs what every request cost
// before the memo, a parse and one small entry for the collector.

const (
	memoSets     = 1024
	memoWays     = 4
	memoMaxBytes = 1024 // target plus hint values: longer ones are parsed every time
)

// parseMemo is the table; it lives on the Server.
type parseMemo struct {
	seed  maphash.Seed
	hints request.Hints // which hint headers the gate honours (non-empty: read it)
	slots [memoSets * memoWays]atomic.Pointer[parsed]
}

func newParseMemo(g *request.Gate) *parseMemo {
	return &parseMemo{seed: maphash.MakeSeed(), hints: g.Honoured(request.Hints{DPR: "y", Width: "y", SaveData: "y"})}
}

// parsed is one target through the grammar. Everything but used and keys
// is written before the entry is published and never after.
type parsed struct {
	hash  uint64
	uri   string        // the request target, exactly as sent
	hints request.Hints // the honoured hint headers' values
	rel   string
	req   request.Request
	vary  request.Vary
	used  atomic.Bool                 // clock bit: set by a hit, cleared by an insert passing over it
	keys  atomic.Pointer[variantKeys] // the last variant answered, nil before one
}

// variantKeys are the keys of the variant a parsed request names for one
// source version and Accept class: what transform derives from them,
// kept while the stat cache reports the same source.
type variantKeys struct {
	identity string
	size     int64
	modTime  time.Time
	accept   request.AcceptClass // zero unless format=auto

	v                request.Variant
	key, etag, group string
	modified         string // Last-Modified's value; "" when the time is unknown
}

// requestHints reads the client hint headers the gate honours, and only
// those, raw: the gate decides what they mean. Sec-CH-Width is the
// current name, Width the one browsers sent before.
func (m *parseMemo) requestHints(c *fiber.Ctx) request.Hints {
	var h request.Hints
	if m.hints.DPR != "" {
		h.DPR = c.Get("Sec-CH-DPR")
	}
	if m.hints.Width != "" {
		if h.Width = c.Get("Sec-CH-Width"); h.Width == "" {
			h.Width = c.Get("Width")
		}
	}
	if m.hints.SaveData != "" {
		h.SaveData = c.Get("Save-Data")
	}
	return h
}

func (m *parseMemo) hash(uri []byte, h request.Hints) uint64 {
	sum := maphash.Bytes(m.seed, uri)
	if h != (request.Hints{}) {
		sum ^= maphash.Comparable(m.seed, h) * 0x9e3779b97f4a7c15
	}
	return sum
}

func (m *parseMemo) set(hash uint64) []atomic.Pointer[parsed] {
	i := int(hash%memoSets) * memoWays
	return m.slots[i : i+memoWays]
}

// get is the entry of uri and h, or nil.
func (m *parseMemo) get(hash uint64, uri []byte, h request.Hints) *parsed {
	set := m.set(hash)
	for i := range set {
		p := set[i].Load()
		if p != nil && p.hash == hash && p.uri == string(uri) && p.hints == h {
			if !p.used.Load() { // written only when it changes: hits share the line read-only
				p.used.Store(true)
			}
			return p
		}
	}
	return nil
}

// put publishes p: in a free way, else the first way not used since the
// hand last passed (starting at a way the hash picks), else that way.
func (m *parseMemo) put(p *parsed) {
	set := m.set(p.hash)
	start := int(p.hash>>32) % memoWays
	for i := range memoWays {
		w := &set[(start+i)%memoWays]
		if q := w.Load(); q == nil || !q.used.Swap(false) {
			w.Store(p)
			return
		}
	}
	set[start].Store(p)
}

// parseTarget is the request's target and hint headers through the
// grammar, from the memo when it has them.
func (s *Server) parseTarget(c *fiber.Ctx) (*parsed, error) {
	uri := c.Request().Header.RequestURI()
	h := s.memo.requestHints(c)
	hash := s.memo.hash(uri, h)
	if p := s.memo.get(hash, uri, h); p != nil {
		return p, nil
	}
	p := &parsed{hash: hash, uri: string(uri), hints: cloneHints(h)}
	if err := s.parseFresh(p); err != nil {
		return nil, err
	}
	if len(p.uri)+len(h.DPR)+len(h.Width)+len(h.SaveData) <= memoMaxBytes {
		s.memo.put(p)
	}
	return p, nil
}

// cloneHints copies h out of the request's buffer (Fiber's header values
// are views into it) for an entry that outlives the request.
func cloneHints(h request.Hints) request.Hints {
	return request.Hints{DPR: strings.Clone(h.DPR), Width: strings.Clone(h.Width), SaveData: strings.Clone(h.SaveData)}
}

// parseFresh fills p's rel, req and vary from its target and hints: the
// path rules, /r/, then the gate.
func (s *Server) parseFresh(p *parsed) error {
	rawPath, rawQ := request.SplitTarget(p.uri)
	rel, err := request.ResolvePath(rawPath, s.prefix)
	if errors.Is(err, request.ErrBadEscape) {
		return fault.New(fault.BadRequest, "The path has malformed percent-encoding.", nil)
	} else if err != nil {
		return fault.New(fault.NotFound, "", err)
	}
	q := request.RawQuery(rawQ)
	if s.cfg.Controls.EnableRRoutes {
		if rel, q, err = request.RouteR(rel, q); errors.Is(err, request.ErrBadPath) {
			return fault.New(fault.NotFound, "", err)
		} else if err != nil {
			return err
		}
	}
	p.rel = rel
	p.req, p.vary, err = s.gate.Hinted(rel, q, p.hints)
	return err
}

// variantKeys are the keys of p's variant of the source o for the Accept
// header accept: the remembered ones when o is the same version and accept
// the same class, else made (and remembered).
func (s *Server) variantKeys(p *parsed, o origin.Original, accept string) *variantKeys {
	var class request.AcceptClass
	if p.req.Output.Auto {
		class = request.ClassifyAccept(accept)
	}
	k := p.keys.Load()
	if k != nil && k.identity == o.Identity && k.size == o.Size && k.modTime.Equal(o.ModTime) && k.accept == class {
		return k
	}
	k = &variantKeys{identity: o.Identity, size: o.Size, modTime: o.ModTime, accept: class,
		v: s.variants.Of(o.Identity, p.req, accept)}
	var vkey string
	k.key, vkey, k.group = storeKey(p.rel, k.v)
	k.etag = request.StrongETag(vkey)
	if !o.ModTime.IsZero() {
		k.modified = string(appendHTTPDate(nil, o.ModTime))
	}
	p.keys.Store(k)
	return k
}
