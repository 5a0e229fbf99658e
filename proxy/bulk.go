package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
)

// bulkItemBytes bounds the body of POST /bulk: this much per item allowed.
const bulkItemBytes = 4 << 10

// bulkFields are the fields of a bulk item besides path: each is the GET
// query parameter of the same name. The OpenAPI test checks the
// description against this list.
var bulkFields = []string{"size", "format", "dpr", "resize_algorithm", "quality", "preset", "sig",
	"width", "height", "fit", "gravity", "focus", "background", "blur"}

// bulkItem is one item of a bulk request as the client sent it: a path and
// the query values it stands for.
type bulkItem struct {
	path  string
	query map[string]string
}

// values is the item's view for the parameter parser, the same as a query
// string's.
func (it bulkItem) values() *request.Query {
	m := make(map[string][]string, len(it.query))
	for k, v := range it.query {
		m[k] = []string{v}
	}
	return request.FixedQuery(m)
}

// itemError names the item a bulk request is refused for.
func itemError(i int, msg string) error {
	return &paramError{"item " + strconv.Itoa(i) + ": " + msg}
}

// bulkParser reads the body of a bulk request into its items. POST /bulk
// and POST /r/bulk differ only in this: their items, once parsed, are the
// same (a path and query values) and run through the same engine.
type bulkParser func(body []byte, maxItems int) ([]bulkItem, error)

// parseBulk reads the JSON array of items: at most maxItems, each an object
// with a string path and only the known fields, each a string, a number
// (its literal text) or null (absent). Errors name the item index.
func parseBulk(body []byte, maxItems int) ([]bulkItem, error) {
	return parseItems(body, maxItems, bulkItemOf)
}

// parseItems reads a JSON array of at most maxItems objects, each turned
// into an item by itemOf, and nothing after it. Errors name the item index
// or the body's shape.
func parseItems(body []byte, maxItems int, itemOf func(map[string]json.RawMessage) (bulkItem, error)) ([]bulkItem, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, &paramError{"The body must be a JSON array of items."}
	}
	var items []bulkItem
	for i := 0; dec.More(); i++ {
		if i == maxItems {
			return nil, itemError(i, "a bulk request takes at most "+strconv.Itoa(maxItems)+" items.")
		}
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, itemError(i, "not a JSON object.")
		}
		it, err := itemOf(raw)
		if err != nil {
			return nil, itemError(i, err.Error())
		}
		items = append(items, it)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, &paramError{"The body must be a JSON array of items."}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &paramError{"The body must be a JSON array of items, and nothing after it."}
	}
	if len(items) == 0 {
		return nil, &paramError{"The array must hold at least one item."}
	}
	return items, nil
}

// bulkItemOf checks one item's fields.
func bulkItemOf(raw map[string]json.RawMessage) (bulkItem, error) {
	it := bulkItem{query: map[string]string{}}
	if err := json.Unmarshal(raw["path"], &it.path); err != nil || it.path == "" {
		return it, errors.New("path must be a non-empty string.")
	}
	for k, v := range raw {
		if k == "path" {
			continue
		}
		if !slices.Contains(bulkFields, k) {
			return it, fmt.Errorf("unknown field %q.", k)
		}
		switch b := bytes.TrimSpace(v); {
		case string(b) == "null":
		case len(b) > 0 && b[0] == '"':
			var str string
			if err := json.Unmarshal(b, &str); err != nil {
				return it, errors.New(k + " must be a string or a number.")
			}
			it.query[k] = str
		case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
			it.query[k] = string(b)
		default:
			return it, errors.New(k + " must be a string or a number.")
		}
	}
	return it, nil
}

// bulkJob is an item ready to render: its request, or the error it fails with.
type bulkJob struct {
	rel string
	req request.Request
	err error // a 404 path: the item's part says so
}

// bulkResult is one rendered item, or its error.
type bulkResult struct {
	val    []byte // format byte, then the image
	etag   string
	status cache.Status
	err    error
}

// handleBulk answers POST /bulk.
func (s *Server) handleBulk(c *fiber.Ctx) error {
	return s.serveBulk(c, parseBulk, s.prefix)
}

// serveBulk answers a bulk request whose items parse reads and whose paths
// are below prefix: every item is checked before anything is sent (a bad
// item is a 400 naming it), then the parts stream in order.
func (s *Server) serveBulk(c *fiber.Ctx, parse bulkParser, prefix string) error {
	start := time.Now()
	jobs, err := s.bulkJobs(c, parse, prefix)
	if err != nil {
		s.writeError(c, err)
		c.Response().Header.SetConnectionClose() // the body may be unread
		s.observe(c, metrics.KindError, start, err.Error())
		return nil
	}
	mw := multipart.NewWriter(io.Discard) // for its random boundary
	h := &c.Response().Header
	h.SetContentType("multipart/mixed; boundary=" + mw.Boundary())
	h.Set(fiber.HeaderCacheControl, "no-store")
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	run := bulkRun{s: s, jobs: jobs, accept: c.Get(fiber.HeaderAccept), conn: c.Context().Conn(), boundary: mw.Boundary()}
	// The writer runs after this handler returns, when c is no longer ours.
	method, path := strings.Clone(c.Method()), strings.Clone(c.Path())
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		run.stream(w)
		s.record(method, path, fiber.StatusOK, metrics.KindBulk, start, "")
	})
	return nil
}

// bulkJobs reads and checks the body of a bulk request.
func (s *Server) bulkJobs(c *fiber.Ctx, parse bulkParser, prefix string) ([]bulkJob, error) {
	maxItems := s.cfg.Backend.BulkMaxItems
	data, err := readCapped(c, int64(maxItems)*bulkItemBytes)
	if err != nil {
		return nil, err
	}
	items, err := parse(data, maxItems)
	if err != nil {
		return nil, err
	}
	jobs := make([]bulkJob, len(items))
	hint := c.Get("Sec-CH-DPR")
	for i, it := range items {
		// The same controls as a GET: signature, preset, quality, sizes.
		rel, req, err := s.gate.Item(it.path, prefix, it.values(), hint)
		if status, msg := classify(err); err != nil && status == fiber.StatusBadRequest {
			return nil, itemError(i, msg) // a bad item is the request's fault
		}
		jobs[i] = bulkJob{rel: rel, req: req, err: err}
	}
	return jobs, nil
}

// bulkRun is one streamed bulk response.
type bulkRun struct {
	s        *Server
	jobs     []bulkJob
	accept   string
	conn     net.Conn
	boundary string
}

// stream renders the items concurrently (at most one per transform slot,
// so one bulk request cannot fill the queue) and writes them in order as
// each is ready. A client that leaves cancels what is still to do; stream
// returns only when every goroutine it started has ended.
func (r *bulkRun) stream(w *bufio.Writer) {
	ctx, cancel := context.WithCancel(context.Background())
	ctx, stop := peerContext(ctx, r.conn)
	results := make([]chan bulkResult, len(r.jobs))
	for i := range results {
		results[i] = make(chan bulkResult, 1)
	}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		stop()
	}()
	wg.Add(1)
	go r.dispatch(ctx, &wg, results)

	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(r.boundary); err != nil {
		return
	}
	for i, ch := range results {
		var res bulkResult
		select {
		case res = <-ch:
		case <-ctx.Done():
			return
		}
		if r.writePart(mw, i, res) != nil || w.Flush() != nil {
			return
		}
	}
	if mw.Close() == nil {
		_ = w.Flush()
	}
}

// dispatch starts the renders in order, each when a slot of this bulk frees.
func (r *bulkRun) dispatch(ctx context.Context, wg *sync.WaitGroup, results []chan bulkResult) {
	defer wg.Done()
	sem := make(chan struct{}, r.s.cfg.Slots())
	for i, job := range r.jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] <- r.s.renderItem(ctx, job, r.accept)
		}()
	}
}

// renderItem is a GET transform's path through the cache without the HTTP
// response: the same key, ETag, coalescing and slots.
func (s *Server) renderItem(ctx context.Context, job bulkJob, accept string) bulkResult {
	if job.err != nil {
		return bulkResult{err: job.err, status: cache.StatusBypass}
	}
	o, src, err := s.sources.Stat(ctx, job.rel)
	if err != nil {
		return bulkResult{err: err, status: cache.StatusBypass}
	}
	v := s.variants.Of(o.Identity, job.req, accept)
	key, vkey, _ := storeKey(job.rel, v)
	if o.Size > s.cfg.MaxSourceBytes {
		return bulkResult{err: errSourceTooBig, status: cache.StatusBypass}
	}
	val, status, err := s.cache.Fetch(ctx, key, func(ctx context.Context) ([]byte, error) {
		return s.renderSource(ctx, src, o, v)
	})
	return bulkResult{val: val, etag: request.StrongETag(vkey), status: status, err: err}
}

// readCapped reads a whole JSON body of at most limit bytes: more is a
// 413, refused as soon as the header or the bytes read show it.
func readCapped(c *fiber.Ctx, limit int64) ([]byte, error) {
	tooLarge := fault.New(fault.BodyTooLarge, "The body is larger than "+strconv.FormatInt(limit, 10)+" bytes.", nil)
	if n := c.Request().Header.ContentLength(); n > 0 && int64(n) > limit {
		return nil, tooLarge
	}
	var body io.Reader = c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	capped := &capReader{r: body, left: limit}
	data, err := io.ReadAll(capped)
	if capped.over {
		return nil, tooLarge
	} else if err != nil {
		return nil, fault.New(fault.BadRequest, "", err)
	}
	return data, nil
}

// writePart writes one item: the image, or its error as the JSON a GET
// would have answered.
func (r *bulkRun) writePart(mw *multipart.Writer, i int, res bulkResult) error {
	h := textproto.MIMEHeader{}
	h.Set("X-Item-Index", strconv.Itoa(i))
	h.Set("X-Cache-Status", res.status.String())
	var body []byte
	if res.err != nil {
		status, msg := classify(res.err)
		body, _ = jsonError(msg)
		h.Set("Content-Type", fiber.MIMEApplicationJSON)
		h.Set("X-Item-Status", strconv.Itoa(status))
		if status >= 500 {
			r.s.log.Error("bulk item failed", "path", r.jobs[i].rel, "status", status, "err", res.err)
		}
	} else {
		body = res.val[1:]
		h.Set("Content-Type", transform.Format(res.val[0]).MIME())
		h["ETag"] = []string{res.etag} // as spelled on a GET (Set would write "Etag")
		h.Set("X-Item-Status", "200")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = pw.Write(body)
	return err
}
