package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/events"
	"image-proxy/metrics"
	"image-proxy/transform"
)

const (
	eventsToken = "events-token-0123456789abcdef"
	purgeToken  = "purge-token-0123456789abcdef"
)

// newHooksServer serves the test root with memory and disk tiers, cache
// tags and both hooks on.
func newHooksServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	return newTestServer(t, func(c *Config, cc *cache.Config, _ *transform.Config) {
		c.CacheTags = true
		c.Hooks = HooksConfig{EventsToken: eventsToken, PurgeToken: purgeToken}
		cc.DiskEnabled, cc.DiskPath, cc.DiskSize = true, dir, 1<<30
	})
}

func TestCacheTags(t *testing.T) {
	ts := newHooksServer(t)
	tag := cache.SourceGroup("rocket.jpg")
	for _, target := range []string{"/rocket.jpg?size=100", "/rocket.jpg?size=100&format=webp", "/rocket.jpg"} {
		resp, _ := ts.get(t, target)
		if resp.StatusCode != 200 || resp.Header.Get("Surrogate-Key") != tag || resp.Header.Get("Cache-Tag") != tag {
			t.Errorf("%s: %d, Surrogate-Key %q, Cache-Tag %q; want %s", target, resp.StatusCode,
				resp.Header.Get("Surrogate-Key"), resp.Header.Get("Cache-Tag"), tag)
		}
		resp, _ = ts.get(t, target, "If-None-Match", resp.Header.Get("ETag"))
		if resp.StatusCode != 304 || resp.Header.Get("Surrogate-Key") != tag {
			t.Errorf("%s revalidated: %d, Surrogate-Key %q", target, resp.StatusCode, resp.Header.Get("Surrogate-Key"))
		}
	}
	resp, _ := ts.get(t, "/missing.jpg?size=100")
	if resp.StatusCode != 404 || resp.Header.Get("Surrogate-Key") != "" {
		t.Errorf("a 404 is tagged: %d %q", resp.StatusCode, resp.Header.Get("Surrogate-Key"))
	}
	off := newTestServer(t, nil) // IMAGE_PROXY_CACHE_TAGS=false
	resp, _ = off.get(t, "/rocket.jpg?size=100")
	if resp.Header.Get("Surrogate-Key") != "" || resp.Header.Get("Cache-Tag") != "" {
		t.Errorf("tags sent with the setting off: %v", resp.Header)
	}
}

type purgeAnswer struct {
	Purged []struct {
		Path    string         `json:"path"`
		Tag     string         `json:"tag"`
		Removed map[string]int `json:"removed"`
		Failed  []string       `json:"failed"`
	} `json:"purged"`
}

func TestPurgeRemovesOneSource(t *testing.T) {
	ts := newHooksServer(t)
	for _, target := range []string{"/rocket.jpg?size=100", "/rocket.jpg?size=200&format=webp", "/coffee.png?size=100"} {
		if resp, _ := ts.get(t, target); resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("%s: %d %s", target, resp.StatusCode, resp.Header.Get("X-Cache-Status"))
		}
	}
	resp, body := ts.post(t, "/purge", []byte(`{"paths":["rocket.jpg","/never-stored.jpg"]}`), "Authorization", "Bearer "+purgeToken)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var got purgeAnswer
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Purged) != 2 || got.Purged[0].Path != "rocket.jpg" || got.Purged[0].Tag != cache.SourceGroup("rocket.jpg") ||
		got.Purged[0].Removed["memory"] != 2 || got.Purged[0].Removed["disk"] != 2 || len(got.Purged[0].Failed) != 0 ||
		got.Purged[1].Path != "never-stored.jpg" || got.Purged[1].Removed["memory"] != 0 {
		t.Errorf("answer %s", body)
	}
	for target, want := range map[string]string{"/rocket.jpg?size=100": "MISS", "/rocket.jpg?size=200&format=webp": "MISS", "/coffee.png?size=100": "HIT-MEMORY"} {
		if resp, _ := ts.get(t, target); resp.Header.Get("X-Cache-Status") != want {
			t.Errorf("%s after the purge: %s, want %s", target, resp.Header.Get("X-Cache-Status"), want)
		}
	}
	if n := testutil.ToFloat64(ts.m.Purges.WithLabelValues(metrics.PurgeRequest)); n != 2 {
		t.Errorf("%v purges counted, want 2", n)
	}
	if n := testutil.ToFloat64(ts.m.PurgedEntries.WithLabelValues(metrics.TierDisk)); n != 2 {
		t.Errorf("%v disk entries counted, want 2", n)
	}
	if n := testutil.ToFloat64(ts.m.HTTPRequests.WithLabelValues("200", metrics.KindPurge)); n != 1 {
		t.Errorf("%v purge requests counted", n)
	}
}

func TestPurgeRefuses(t *testing.T) {
	ts := newHooksServer(t)
	auth := []string{"Authorization", "Bearer " + purgeToken}
	many := `{"paths":[` + strings.Repeat(`"a.jpg",`, purgeMaxPaths) + `"a.jpg"]}`
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		says    string
	}{
		{"no token", `{"paths":["a.jpg"]}`, nil, 401, "bearer token"},
		{"wrong token", `{"paths":["a.jpg"]}`, []string{"Authorization", "Bearer " + eventsToken}, 401, "bearer token"},
		{"basic scheme", `{"paths":["a.jpg"]}`, []string{"Authorization", "Basic " + purgeToken}, 401, "bearer token"},
		{"not json", `paths=a.jpg`, auth, 400, "must be JSON"},
		{"unknown field", `{"path":["a.jpg"]}`, auth, 400, "must be JSON"},
		{"paths not a list", `{"paths":"a.jpg"}`, auth, 400, "must be JSON"},
		{"no paths", `{"paths":[]}`, auth, 400, "at least one path"},
		{"empty object", `{}`, auth, 400, "at least one path"},
		{"too many", many, auth, 400, "at most 1000"},
		{"dot-dot", `{"paths":["ok.jpg","../etc/passwd"]}`, auth, 400, "paths[1] is not a plain path"},
		{"hidden", `{"paths":[".env"]}`, auth, 400, "paths[0]"},
		{"empty path", `{"paths":[""]}`, auth, 400, "paths[0]"},
		{"empty segment", `{"paths":["a//b.jpg"]}`, auth, 400, "paths[0]"},
		{"too large", `{"paths":["` + strings.Repeat("a", purgeBodyBytes) + `"]}`, auth, 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.post(t, "/purge", []byte(c.body), c.headers...)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.says) {
				t.Errorf("%d %s; want %d saying %q", resp.StatusCode, body, c.status, c.says)
			}
		})
	}
	if n := testutil.ToFloat64(ts.m.Purges.WithLabelValues(metrics.PurgeRequest)); n != 0 {
		t.Errorf("%v purges after refusals", n)
	}
	off := newTestServer(t, nil)
	if resp, body := off.post(t, "/purge", []byte(`{"paths":["a.jpg"]}`), auth...); resp.StatusCode != 404 || !strings.Contains(string(body), "not enabled") {
		t.Errorf("purge without a token set: %d %s", resp.StatusCode, body)
	}
}

// eventBody is a MinIO webhook notification of one event.
func eventBody(name, key, seq string) []byte {
	return []byte(fmt.Sprintf(`{"EventName":%q,"Key":"photos/%s","Records":[{"eventName":%q,"s3":{"bucket":{"name":"photos"},"object":{"key":%q,"sequencer":%q}}}]}`,
		name, key, name, key, seq))
}

func TestEventsEndpoint(t *testing.T) {
	ts := newHooksServer(t)
	// Not taken yet: no receiver.
	if resp, _ := ts.post(t, "/events/s3", eventBody("s3:ObjectCreated:Put", "a.jpg", "1"), "Authorization", "Bearer "+eventsToken); resp.StatusCode != 404 {
		t.Fatalf("without a receiver: %d", resp.StatusCode)
	}
	// A receiver without workers: what it queues stays queued, so the
	// queue's bound shows.
	r := events.NewReceiver(events.Scope{Bucket: "photos"}, events.Deps{Forget: ts.Sources().Forget, Metrics: ts.m})
	ts.UseEvents(r)
	auth := []string{"Authorization", "Bearer " + eventsToken, "Content-Type", "application/json"}
	var full []string
	for i := range events.QueueCapacity + 1 {
		full = append(full, fmt.Sprintf(`{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"photos"},"object":{"key":"f%d.jpg"}}}`, i))
	}
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		says    string
	}{
		{"no token", string(eventBody("s3:ObjectCreated:Put", "a.jpg", "1")), nil, 401, "bearer token"},
		{"the purge token", string(eventBody("s3:ObjectCreated:Put", "a.jpg", "1")), []string{"Authorization", "Bearer " + purgeToken}, 401, "bearer token"},
		{"not json", `<xml/>`, auth, 400, "not an S3 event notification"},
		{"not an event", `{"hello":1}`, auth, 400, "not an S3 event notification"},
		{"record without key", `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"photos"}}}]}`, auth, 400, "Records[0]: the event names no object key"},
		{"too large", `{"Records":[],"pad":"` + strings.Repeat("x", eventsBodyBytes) + `"}`, auth, 413, "larger than"},
		{"queued", string(eventBody("s3:ObjectCreated:Put", "a.jpg", "1")), auth, 200, `{"queued":1,"duplicate":0,"ignored":0}`},
		{"again", string(eventBody("s3:ObjectCreated:Put", "a.jpg", "1")), auth, 200, `{"queued":0,"duplicate":1,"ignored":0}`},
		{"unknown event name", string(eventBody("s3:ObjectAccessed:Get", "a.jpg", "2")), auth, 200, `"ignored":1`},
		{"other bucket", `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"x"},"object":{"key":"a.jpg"}}}]}`, auth, 200, `"ignored":1`},
		{"test event", `{"Service":"Amazon S3","Event":"s3:TestEvent"}`, auth, 200, `"queued":0`},
		{"queue full", `{"Records":[` + strings.Join(full, ",") + `]}`, auth, 503, "queue is full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.post(t, "/events/s3", []byte(c.body), c.headers...)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.says) {
				t.Errorf("%d %s; want %d saying %q", resp.StatusCode, body, c.status, c.says)
			}
			if c.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	off := newTestServer(t, nil)
	off.UseEvents(r)
	if resp, _ := off.post(t, "/events/s3", eventBody("s3:ObjectCreated:Put", "a.jpg", "1"), auth...); resp.StatusCode != 404 {
		t.Errorf("events without a token set: %d", resp.StatusCode)
	}
	if resp, _ := ts.get(t, "/events/s3"); resp.StatusCode == http.StatusOK {
		t.Error("GET /events/s3 answered 200")
	}
}
