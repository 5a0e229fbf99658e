package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/fault"
	"image-proxy/imageformat"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
)

// bodyPrefetch is what fasthttp reads of a body before the handler runs
// (Fiber's BodyLimit with StreamRequestBody); every route but the POSTs
// that read a body refuses more (bodyGuard).
const bodyPrefetch = 4 << 10

// bodyGuard keeps the 4 KB body limit the server had before bodies were
// streamed: a larger body anywhere but POST /convert, /bulk and /r/bulk is
// refused (413) without being read. A chunked body is read up to the limit.
func (s *Server) bodyGuard(c *fiber.Ctx) error {
	if s.takesBody(c) {
		return c.Next()
	}
	n := c.Request().Header.ContentLength()
	if n == -1 { // chunked: only reading tells its size
		if stream := c.Context().RequestBodyStream(); stream != nil {
			got, _ := io.Copy(io.Discard, io.LimitReader(stream, bodyPrefetch+1))
			n = int(got)
		}
	}
	if n > bodyPrefetch {
		s.writeError(c, fault.New(fault.BodyTooLarge, "", nil))
		s.observe(c, metrics.KindError, time.Now(), "body too large")
		return nil
	}
	return c.Next()
}

// observe records the one metric sample and debug line of a backend request.
func (s *Server) observe(c *fiber.Ctx, kind string, start time.Time, errText string) {
	s.record(c.Method(), c.Path(), c.Response().StatusCode(), kind, start, errText)
}

// record is observe for a response that outlives its fiber.Ctx (a stream).
func (s *Server) record(method, path string, code int, kind string, start time.Time, errText string) {
	elapsed := time.Since(start)
	s.reqMetrics.observe(code, kind, elapsed)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("request", "method", method, "path", path, "status", code,
			"duration_ms", float64(elapsed.Microseconds())/1000, "err", errText)
	}
}

// handleConvert answers POST /convert: an uploaded image, converted and
// returned, stored nowhere.
func (s *Server) handleConvert(c *fiber.Ctx) error {
	return s.handlePost(c, metrics.KindConvert, s.convert)
}

// handlePost runs the work of a POST endpoint that reads a body, writes
// its error when it fails, and counts it as kind (or as an error).
func (s *Server) handlePost(c *fiber.Ctx, kind string, work func(*fiber.Ctx) error) error {
	start := time.Now()
	errText := ""
	if err := work(c); err != nil {
		s.writeError(c, err)
		// The body may be unread: the connection cannot carry another request.
		c.Response().Header.SetConnectionClose()
		kind, errText = metrics.KindError, err.Error()
	}
	s.observe(c, kind, start, errText)
	return nil
}

func (s *Server) convert(c *fiber.Ctx) error {
	b := s.cfg.Backend
	if !b.ConvertEnabled() {
		return fault.New(fault.NotFound, "POST /convert is not enabled on this server.", nil)
	}
	if !bearerMatches(c.Get(fiber.HeaderAuthorization), b.ConvertToken) {
		return fault.New(fault.Unauthorized, "", nil)
	}
	upload, err := s.readUpload(c)
	if err != nil {
		return err
	}
	opts, err := parseConvert(upload.field, s.cfg.MaxBox)
	if err != nil {
		return err
	}
	opts.Algorithm = s.cfg.Algorithm
	ctx, stop := peerContext(c.UserContext(), c.Context().Conn())
	defer stop()
	res, err := s.renderBytes(ctx, upload.file, opts)
	if err != nil {
		return err
	}
	h := &c.Response().Header
	h.SetContentType(res.Format.MIME())
	h.Set(fiber.HeaderCacheControl, "no-store")
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Response().SetBodyRaw(res.Data)
	return nil
}

// bearerMatches compares an Authorization header with the token in
// constant time: both sides are hashed first, so neither the length nor a
// prefix of the token shows in the time taken.
func bearerMatches(header, token string) bool {
	scheme, given, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(given))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// convertFields are the form fields POST /convert reads besides file; the
// OpenAPI test checks the description against this list.
var convertFields = []string{"format", "quality", "width", "height", "fit", "gravity", "focus", "background", "blur"}

// upload is a read multipart body: the file's bytes and the other fields.
type upload struct {
	file  []byte
	field map[string]string
}

// readUpload reads the multipart body as it arrives, counting every byte
// against IMAGE_PROXY_CONVERT_MAX_BYTES: past it the request is refused
// without reading further, whatever Content-Length says.
func (s *Server) readUpload(c *fiber.Ctx) (upload, error) {
	limit := s.cfg.Backend.ConvertMaxBytes
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return upload{}, fault.New(fault.Unsupported, "The request body must be multipart/form-data.", err)
	}
	if n := c.Request().Header.ContentLength(); n > 0 && int64(n) > limit {
		return upload{}, errUploadTooBig(limit)
	}
	var body io.Reader = c.Context().RequestBodyStream()
	if body == nil { // a server without streaming: the body is in memory
		body = bytes.NewReader(c.Body())
	}
	capped := &capReader{r: body, left: limit}
	u, err := readParts(multipart.NewReader(capped, params["boundary"]))
	if capped.over {
		return upload{}, errUploadTooBig(limit)
	}
	return u, err
}

func errUploadTooBig(limit int64) error {
	return fault.New(fault.BodyTooLarge, "The upload is larger than "+strconv.FormatInt(limit, 10)+" bytes.", nil)
}

// readParts reads every part: file and each known field at most once,
// other parts skipped.
func readParts(mr *multipart.Reader) (upload, error) {
	u := upload{field: map[string]string{}}
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return u, fault.New(fault.BadRequest, "The multipart body is malformed.", err)
		}
		name := p.FormName()
		known := name == "file" || slices.Contains(convertFields, name)
		if known && seen[name] {
			return u, &paramError{name + " must be given only once."}
		}
		seen[name] = true
		switch {
		case name == "file":
			u.file, err = io.ReadAll(p)
		case known:
			var v []byte
			v, err = io.ReadAll(io.LimitReader(p, 64))
			u.field[name] = string(v)
		default:
			_, err = io.Copy(io.Discard, p)
		}
		if err != nil {
			return u, fault.New(fault.BadRequest, "The multipart body is malformed.", err)
		}
	}
	if !seen["file"] {
		return u, &paramError{"file is required: the image as a multipart/form-data file field."}
	}
	if len(u.file) == 0 {
		return u, &paramError{"file must not be empty."}
	}
	return u, nil
}

// capReader reads at most left bytes; reading past them sets over and
// fails, so the multipart reader stops there.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

var errCapped = errors.New("body over the cap")

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, errCapped
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		c.over = true
		return n, errCapped
	}
	return n, err
}

// convertFormats are the outputs POST /convert offers, its default first.
// Read-only after start.
var convertFormats = convertOffers()

// convertOffers lists the default, WebP, then the table's other outputs in
// the contract's order. GIF alone is not offered: /convert is for backends
// that want WebP/AVIF/JPEG/PNG bytes (README, "POST /convert"). A format
// the table learns to encode is offered with no edit here.
func convertOffers() []imageformat.Format {
	offers := []imageformat.Format{imageformat.WebP}
	for _, name := range imageformat.OutputNames() {
		if f, _ := imageformat.Parse(name); f != imageformat.GIF && !slices.Contains(offers, f) {
			offers = append(offers, f)
		}
	}
	return offers
}

// orList names formats as a sentence does: "webp, avif, jpeg or png".
func orList(formats []imageformat.Format) string {
	var b strings.Builder
	for i, f := range formats {
		switch {
		case i == 0:
		case i == len(formats)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// parseConvert validates the form fields: format (webp by default),
// quality 1–100, width and height 1 … maxBox, and the shape fields as the
// query spells them (parseConvertShape). An empty field is absent.
func parseConvert(field map[string]string, maxBox int) (transform.Options, error) {
	opts := transform.Options{Format: convertFormats[0]}
	if v := field["format"]; v != "" {
		f, ok := imageformat.Parse(v)
		if !ok || !slices.Contains(convertFormats, f) {
			return opts, &paramError{"format must be one of " + orList(convertFormats) + "."}
		}
		opts.Format = f
	}
	for _, n := range []struct {
		name   string
		max    int
		target *int
	}{{"quality", 100, &opts.Quality}, {"width", maxBox, &opts.Width}, {"height", maxBox, &opts.Height}} {
		v := field[n.name]
		if v == "" {
			continue
		}
		x, ok := request.ParseDigits(v)
		if !ok || x < 1 || x > n.max {
			return opts, &paramError{n.name + " must be a whole number from 1 to " + strconv.Itoa(n.max) + "."}
		}
		*n.target = x
	}
	return opts, parseConvertShape(field, &opts, maxBox)
}

// parseConvertShape reads fit, gravity, focus, background and blur with
// the query's parser and holds them, with width and height, to the
// query's rules, so a form field means what the URL parameter does.
func parseConvertShape(field map[string]string, opts *transform.Options, maxBox int) error {
	q := map[string][]string{}
	for _, k := range []string{"fit", "gravity", "focus", "background", "blur"} {
		if v := field[k]; v != "" {
			q[k] = []string{v}
		}
	}
	r, err := request.Parse(request.FixedQuery(q), "", maxBox)
	if err != nil {
		return err
	}
	r.Width, r.Height = opts.Width, opts.Height
	if err := r.CheckShape(); err != nil {
		return err
	}
	opts.Fit, opts.Gravity, opts.Focus, opts.Background, opts.Blur = r.Fit, r.Gravity, r.Focus, r.Background, r.Blur
	return nil
}

// renderBytes renders an original already in memory in a transform slot,
// counted like every render. It is renderSource without a source.
func (s *Server) renderBytes(ctx context.Context, data []byte, opts transform.Options) (transform.Result, error) {
	sl, err := s.enterSlot(ctx)
	if err != nil {
		return transform.Result{}, err
	}
	defer sl.Leave()
	return s.render(ctx, data, opts)
}
