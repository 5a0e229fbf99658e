package proxy

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"image-proxy/metrics"
)

// What a cache hit needs, resolved once: metric series looked up by label
// at start, header names set without fasthttp normalising them again, a
// date formatted without time.Format.

// setCanonical sets a header whose name is already in canonical form
// ("Cache-Control"). fasthttp copies both, so viewing the strings as bytes
// is safe and costs no allocation.
func setCanonical(h *fasthttp.ResponseHeader, key, value string) {
	h.SetCanonical(utils.UnsafeBytes(key), utils.UnsafeBytes(value))
}

// requestMetrics are the per-request series of every handler, resolved at
// start for every code metrics.HTTPCodes lists; any other code is looked
// up by label as before.
type requestMetrics struct {
	vec      *prometheus.CounterVec
	counts   map[string]map[int]prometheus.Counter // kind → code
	duration map[string]prometheus.Observer        // kind
	hvec     *prometheus.HistogramVec

	// A transform's 200, every hit's series: no map look-up.
	transformOK  prometheus.Counter
	transformDur prometheus.Observer
}

func newRequestMetrics(m *metrics.Metrics) requestMetrics {
	r := requestMetrics{vec: m.HTTPRequests, hvec: m.HTTPDuration,
		counts: map[string]map[int]prometheus.Counter{}, duration: map[string]prometheus.Observer{}}
	for _, kind := range metrics.Kinds {
		r.counts[kind] = map[int]prometheus.Counter{}
		for _, code := range metrics.HTTPCodes[kind] {
			n, _ := strconv.Atoi(code)
			r.counts[kind][n] = m.HTTPRequests.WithLabelValues(code, kind)
		}
		r.duration[kind] = m.HTTPDuration.WithLabelValues(kind)
	}
	r.transformOK, r.transformDur = r.counts[metrics.KindTransform][200], r.duration[metrics.KindTransform]
	return r
}

func (r *requestMetrics) observe(code int, kind string, d time.Duration) {
	if code == 200 && kind == metrics.KindTransform && r.transformOK != nil {
		r.transformOK.Inc()
		r.transformDur.Observe(d.Seconds())
		return
	}
	c, ok := r.counts[kind][code]
	if !ok {
		c = r.vec.WithLabelValues(strconv.Itoa(code), kind)
	}
	c.Inc()
	o, ok := r.duration[kind]
	if !ok {
		o = r.hvec.WithLabelValues(kind)
	}
	o.Observe(d.Seconds())
}

// appendHTTPDate appends t as an IMF-fixdate ("Mon, 02 Jan 2006 15:04:05
// GMT"), what fasthttp.AppendHTTPDate writes, at a fraction of the cost.
func appendHTTPDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 1000 || year > 9999 {
		return fasthttp.AppendHTTPDate(dst, t) // not four digits: the general path
	}
	const days = "SunMonTueWedThuFriSat"
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	hour, minute, sec := t.Clock()
	wd := int(t.Weekday()) * 3
	m := (int(month) - 1) * 3
	dst = append(dst, days[wd:wd+3]...)
	dst = append(dst, ", "...)
	dst = append2(dst, day)
	dst = append(dst, ' ')
	dst = append(dst, months[m:m+3]...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(year), 10)
	dst = append(dst, ' ')
	dst = append2(dst, hour)
	dst = append(dst, ':')
	dst = append2(dst, minute)
	dst = append(dst, ':')
	dst = append2(dst, sec)
	return append(dst, " GMT"...)
}

func append2(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }
