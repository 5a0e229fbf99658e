package request

import (
	"net/url"
	"strings"
)

// SplitTarget splits a raw request target into its still-encoded path and
// query. Working on the raw bytes keeps the HTTP server's path
// normalisation (which would resolve "..") out of the way, and skips
// parsing we do not need.
func SplitTarget(target string) (path, query string) {
	if i := strings.Index(target, "://"); i >= 0 && !strings.Contains(target[:i], "/") {
		// absolute-form: drop scheme and authority
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	target, _, _ = strings.Cut(target, "#")
	path, query, _ = strings.Cut(target, "?")
	return path, query
}

// Query is the view of a query string the parser needs: every value of a
// key, in order (Values). It keeps parsing independent of any HTTP
// framework; a concrete type rather than an interface or a func, so a
// request's pairs stay on the caller's stack. Its first maxPairs pairs
// live in the arrays, the rest in more.
type Query struct {
	n          int
	keys, vals [maxPairs]string
	more       [][2]string
	// fixed values (already decoded) win over the query's: presets, the
	// /r/ form's path segments, a bulk item's fields.
	fixed map[string][]string
}

const maxPairs = 8

// RawQuery reads values from an encoded query string the way browsers and
// CDNs encode them ("+" is a space). The query is split once and its keys
// decoded; a value is decoded only when its key is asked for (by parameter
// name, which never needs escaping), and a key given once costs no
// allocation.
func RawQuery(query string) *Query {
	p := &Query{}
	p.split(query)
	return p
}

// FixedQuery is a query of decoded values only.
func FixedQuery(m map[string][]string) *Query { return &Query{fixed: m} }

func (p *Query) split(query string) {
	for rest := query; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if strings.ContainsAny(k, "%+") {
			dk, err := url.QueryUnescape(k)
			if err != nil {
				continue // a key that does not decode is nobody's
			}
			k = dk
		}
		if p.n < maxPairs {
			p.keys[p.n], p.vals[p.n] = k, v
		} else {
			p.more = append(p.more, [2]string{k, v})
		}
		p.n++
	}
}

func (p *Query) pair(i int) (k, v string) {
	if i < maxPairs {
		return p.keys[i], p.vals[i]
	}
	kv := p.more[i-maxPairs]
	return kv[0], kv[1]
}

// Values is every value of key, decoded, in order: the fixed values when
// key has some, else the query's. A value that does not decode is kept as
// given.
func (p *Query) Values(key string) []string {
	if v, ok := p.fixed[key]; ok {
		return v
	}
	var out []string
	for i := 0; i < p.n; i++ {
		k, v := p.pair(i)
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if dv, err := url.QueryUnescape(v); err == nil {
				v = dv
			}
		}
		if out == nil && i < maxPairs && p.count(key, i+1) == 0 {
			p.vals[i] = v
			return p.vals[i : i+1 : i+1] // the usual case: given once
		}
		out = append(out, v)
	}
	return out
}

// count is how many pairs from index from on have key.
func (p *Query) count(key string, from int) int {
	n := 0
	for i := from; i < p.n; i++ {
		if k, _ := p.pair(i); k == key {
			n++
		}
	}
	return n
}
