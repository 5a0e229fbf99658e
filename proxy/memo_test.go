package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"image-proxy/metrics"
	"image-proxy/request"
)

// memoHas reports whether the parse memo holds target (any hint values).
func memoHas(s *Server, target string) bool {
	for i := range s.memo.slots {
		if p := s.memo.slots[i].Load(); p != nil && p.uri == target {
			return true
		}
	}
	return false
}

func memoLen(s *Server) int {
	n := 0
	for i := range s.memo.slots {
		if s.memo.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// forgetParses empties the memo: the next request of every target is
// parsed afresh.
func forgetParses(s *Server) { s.memo = newParseMemo(s.gate) }

// answer is a response as a client sees it, but for Date.
func answerOf(resp *http.Response, body []byte) string {
	var lines []string
	for k, vs := range resp.Header {
		if k != "Date" {
			lines = append(lines, k+": "+strings.Join(vs, ", "))
		}
	}
	slices.Sort(lines)
	return strconv.Itoa(resp.StatusCode) + "\n" + strings.Join(lines, "\n") + "\n" + string(body)
}

type memoCase struct {
	target  string
	headers [][]string // each set asked in turn, then all again
}

// TestMemoAnswersAsAFreshParse: for every URL form, with and without the
// hint headers and Accept, an answer from the parse memo (and its
// remembered keys) is byte for byte the answer of a fresh parse.
func TestMemoAnswersAsAFreshParse(t *testing.T) {
	signed := func(message string) string { return "&sig=" + sigOf(keyNow, message) }
	hints := signingControls()
	hints.SigningKey, hints.SigningKeyPrevious = "", ""
	hints.Hints = request.HintsConfig{ClientHints: "dpr,width,save-data", SaveDataQuality: 30}
	rSigned := rControls()
	rSigned.SigningKey = keyNow
	accepts := [][]string{{"Accept", "image/avif,image/webp,*/*"}, {"Accept", "image/webp,*/*"}, {"Accept", "*/*"}, nil}
	hintSets := [][]string{nil, {"Sec-CH-DPR", "2"}, {"Sec-CH-Width", "350"}, {"Width", "350"}, {"Save-Data", "on"},
		{"Sec-CH-DPR", "3", "Sec-CH-Width", "700", "Save-Data", "on"}}
	for _, c := range []struct {
		name     string
		controls request.ControlsConfig
		cases    []memoCase
	}{
		{"plain", request.ControlsConfig{AllowQuality: true, SignPassthrough: true}, []memoCase{
			{"/rocket.jpg?size=100&format=webp", [][]string{nil, {"Sec-CH-DPR", "2"}}},
			{"/rocket.jpg?size=100&format=auto", accepts},
			{"/rock%65t.jpg?size=100&format=png&v=1", nil},
			{"/rocket.jpg?width=120&height=80&fit=cover&gravity=north", [][]string{nil, {"Sec-CH-DPR", "2"}}},
			{"/rocket.jpg?size=100&format=json", nil},
			{"/rocket.jpg", nil},
			{"/rocket.jpg?size=100&format=webp", [][]string{{"If-None-Match", "*"}}},
			{"http://example.com/rocket.jpg?size=90", nil},
		}},
		{"signed presets", signingControls(), []memoCase{
			{"/rocket.jpg?size=100&format=webp" + signed("/rocket.jpg?format=webp&size=100"), [][]string{nil, {"Sec-CH-DPR", "2"}}},
			{"/rocket.jpg?preset=phone" + signed("/rocket.jpg?preset=phone"), nil},
			{"/rocket.jpg?preset=desktop&format=auto" + signed("/rocket.jpg?format=auto&preset=desktop"), accepts},
			{"/rocket.jpg?sig=" + sigOf(keyNow, "/rocket.jpg?"), nil},
		}},
		{"hints", hints, []memoCase{
			{"/rocket.jpg?format=webp", hintSets},
			{"/rocket.jpg?size=100&format=auto", append(slices.Clone(hintSets), accepts...)},
			{"/rocket.jpg?preset=phone", hintSets},
		}},
		{"r-routes signed", rSigned, []memoCase{
			{"/r/variants/200/phone/astronaut-alpha.png?sig=" + sigOf(keyNow, "/variants/astronaut-alpha.png?format=webp&preset=phone&size=200"), nil},
			{"/rocket.jpg?size=100" + signed("/rocket.jpg?size=100"), [][]string{nil, {"Sec-CH-DPR", "2"}}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := withControls(t, c.controls)
			for _, mc := range c.cases {
				checkMemoCase(t, ts, mc)
			}
		})
	}
}

// checkMemoCase asks mc's target with each header set: first each parsed
// afresh, then each twice more with the memo kept, and compares.
func checkMemoCase(t *testing.T, ts *testServer, mc memoCase) {
	t.Helper()
	sets := mc.headers
	if sets == nil {
		sets = [][]string{nil}
	}
	for _, h := range sets {
		ts.get(t, mc.target, h...) // renders: every answer below is a cache hit
	}
	fresh := make([]string, len(sets))
	for i, h := range sets {
		forgetParses(ts.Server)
		fresh[i] = answerOf(ts.get(t, mc.target, h...))
		if !strings.HasPrefix(fresh[i], "200") && !strings.HasPrefix(fresh[i], "304") {
			t.Fatalf("%s %q: %.300s", mc.target, h, fresh[i])
		}
	}
	forgetParses(ts.Server)
	for round := range 3 {
		for i, h := range sets {
			if got := answerOf(ts.get(t, mc.target, h...)); got != fresh[i] {
				t.Errorf("%s %q round %d: from the memo\n%.400s\nparsed afresh\n%.400s", mc.target, h, round, got, fresh[i])
			}
		}
	}
	if !memoHas(ts.Server, mc.target) {
		t.Errorf("%s: not in the memo", mc.target)
	}
}

// TestMemoNeverKeepsErrors: a bad URL fails the same way however often it
// is asked, each refusal counted, and is never remembered.
func TestMemoNeverKeepsErrors(t *testing.T) {
	c := signingControls()
	c.AllowedSizes = "100,200"
	ts := withControls(t, c)
	for _, bad := range []struct {
		target, reason string
		status         int
	}{
		{"/rocket.jpg%zz?size=100", "", 400},
		{"/../etc/passwd?size=100", "", 404},
		{"/.env?size=100", "", 404},
		{"/rocket.jpg?size=abc", "", 400},
		{"/rocket.jpg?size=100", metrics.RefusalSignatureMissing, 403},
		{"/rocket.jpg?size=100&sig=AAAA", metrics.RefusalSignatureInvalid, 403},
		{"/rocket.jpg?preset=nope&sig=" + sigOf(keyNow, "/rocket.jpg?preset=nope"), metrics.RefusalUnknownPreset, 400},
		{"/rocket.jpg?size=150&sig=" + sigOf(keyNow, "/rocket.jpg?size=150"), metrics.RefusalSizeNotAllowed, 400},
		{"/missing.jpg?size=100&sig=" + sigOf(keyNow, "/missing.jpg?size=100"), "", 404},
	} {
		var first string
		for i := range 3 {
			before := 0.0
			if bad.reason != "" {
				before = refusals(ts, bad.reason)
			}
			got := answerOf(ts.get(t, bad.target))
			if i == 0 {
				first = got
			}
			if got != first || !strings.HasPrefix(got, strconv.Itoa(bad.status)) {
				t.Errorf("%s, time %d: %.300s; first %.300s", bad.target, i+1, got, first)
			}
			if bad.reason != "" && refusals(ts, bad.reason) != before+1 {
				t.Errorf("%s, time %d: refusal not counted under %s", bad.target, i+1, bad.reason)
			}
		}
		// A missing file parses: it is the look-up, not the parse, that fails.
		if memoHas(ts.Server, bad.target) != strings.HasPrefix(bad.target, "/missing") {
			t.Errorf("%s: in the memo %v", bad.target, memoHas(ts.Server, bad.target))
		}
	}
}

// TestMemoBoundedUnderSpray: one-off URLs (a cache-buster per request, all
// cache hits) fill the memo to its fixed size and no further, while a URL
// asked between them keeps its entry; a target too long is not kept.
func TestMemoBoundedUnderSpray(t *testing.T) {
	const hot = "/rocket.jpg?size=100&format=webp"
	ts, _ := hitServer(t, hot, "HIT-MEMORY", nil)
	serve := servingAny(t, ts.App().Handler())
	capacity := memoSets * memoWays
	for i := range 3 * capacity {
		if code := serve(hot + "&bust=" + strconv.Itoa(i)); code != 200 {
			t.Fatalf("spray %d: status %d", i, code)
		}
		if i%8 == 0 && serve(hot) != 200 {
			t.Fatal("hot URL failed")
		}
	}
	if n := memoLen(ts.Server); n > capacity {
		t.Errorf("%d entries, capacity %d", n, capacity)
	}
	if !memoHas(ts.Server, hot) {
		t.Error("the URL asked throughout the spray lost its entry")
	}
	long := hot + "&bust=" + strings.Repeat("x", memoMaxBytes)
	if code := serve(long); code != 200 || memoHas(ts.Server, long) {
		t.Errorf("long target: status %d, in the memo %v", code, memoHas(ts.Server, long))
	}
}

// servingAny is hitRequest for any target, on one connection.
func servingAny(t testing.TB, h fasthttp.RequestHandler) func(uri string) int {
	var ctx fasthttp.RequestCtx
	ctx.Init2(loopbackConn(t), nil, false)
	return func(uri string) int {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetMethod("GET")
		h(&ctx)
		return ctx.Response.StatusCode()
	}
}
