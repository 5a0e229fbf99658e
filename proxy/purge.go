package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/metrics"
	"image-proxy/request"
)

// purgeMaxPaths bounds one POST /purge: a deletion script sends a few
// paths; a larger clean-up sends several requests.
const purgeMaxPaths = 1000

// purgeBodyBytes bounds its body: purgeMaxPaths paths of ~1 KB.
const purgeBodyBytes = purgeMaxPaths * 1024

// purgeRequest is POST /purge's body.
type purgeRequest struct {
	Paths []string `json:"paths"`
}

// purgedSource is one path's line of the answer: its tag (the CDN purges
// by it: Surrogate-Key, Cache-Tag) and what each tier removed.
type purgedSource struct {
	Path    string         `json:"path"`
	Tag     string         `json:"tag"`
	Removed map[string]int `json:"removed"`
	Failed  []string       `json:"failed,omitempty"` // tiers that could not purge (all or part)
}

// Purge removes every stored result of the source at rel from this
// replica's tiers and the shared one, and drops what the sources remember
// of it, so a replaced original is described afresh. trigger is the
// metrics label (metrics.PurgeRequest or metrics.PurgeEvent). Other
// replicas' own tiers keep their entries under the old identity until
// their identity cache entry expires (IMAGE_PROXY_S3_STAT_MAX_AGE).
func (s *Server) Purge(ctx context.Context, rel, trigger string) []cache.Purged {
	s.sources.Forget(rel)
	out := s.cache.Purge(ctx, rel)
	s.m.Purges.WithLabelValues(trigger).Inc()
	for _, p := range out {
		s.m.PurgedEntries.WithLabelValues(p.Tier).Add(float64(p.Removed))
		if p.Err != nil {
			s.log.WarnContext(ctx, "purge failed in a tier", "path", rel, "tier", p.Tier, "err", p.Err)
		}
	}
	s.log.InfoContext(ctx, "purged", "path", rel, "trigger", trigger, "tiers", purgedAttr(out))
	return out
}

// purgedAttr is the log's "memory=1 disk=2 s3=3".
func purgedAttr(ps []cache.Purged) string {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", p.Tier, p.Removed)
	}
	return b.String()
}

// handlePurge answers POST /purge: 200 with what each tier removed, 502
// when a tier could not purge (the same body says which; a retry is
// safe).
func (s *Server) handlePurge(c *fiber.Ctx) error {
	return s.handlePost(c, metrics.KindPurge, s.purge)
}

func (s *Server) purge(c *fiber.Ctx) error {
	token := s.cfg.Hooks.PurgeToken
	if token == "" {
		return fault.New(fault.NotFound, "POST /purge is not enabled on this server.", nil)
	}
	if !bearerMatches(c.Get(fiber.HeaderAuthorization), token) {
		return fault.New(fault.Unauthorized, "", nil)
	}
	rels, err := s.purgePaths(c)
	if err != nil {
		return err
	}
	answer := struct {
		Purged []purgedSource `json:"purged"`
	}{}
	failed := false
	for _, rel := range rels {
		ps := purgedSource{Path: rel, Tag: cache.SourceGroup(rel), Removed: map[string]int{}}
		for _, p := range s.Purge(c.UserContext(), rel, metrics.PurgeRequest) {
			ps.Removed[p.Tier] = p.Removed
			if p.Err != nil {
				ps.Failed, failed = append(ps.Failed, p.Tier), true
			}
		}
		answer.Purged = append(answer.Purged, ps)
	}
	body, _ := marshalLine(answer)
	if failed {
		c.Status(fiber.StatusBadGateway)
	}
	c.Response().Header.Set(fiber.HeaderCacheControl, "no-store")
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(body)
	return nil
}

// purgePaths reads and checks the body: every path must be one a GET
// could name (the same rules), or the request is refused whole.
func (s *Server) purgePaths(c *fiber.Ctx) ([]string, error) {
	data, err := readCapped(c, purgeBodyBytes)
	if err != nil {
		return nil, err
	}
	var req purgeRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fault.New(fault.BadRequest, `The body must be JSON: {"paths": ["photos/cat.jpg", …]}.`, err)
	}
	switch {
	case len(req.Paths) == 0:
		return nil, fault.New(fault.BadRequest, `"paths" must list at least one path.`, nil)
	case len(req.Paths) > purgeMaxPaths:
		return nil, fault.New(fault.BadRequest, `"paths" may list at most `+strconv.Itoa(purgeMaxPaths)+` paths; send several requests.`, nil)
	}
	rels := make([]string, len(req.Paths))
	for i, p := range req.Paths {
		rel, ok := request.PlainPath(p)
		if !ok {
			return nil, fault.New(fault.BadRequest, fmt.Sprintf("paths[%d] is not a plain path below the root (no .., hidden or empty segments).", i), nil)
		}
		rels[i] = rel
	}
	return rels, nil
}
