// Package events turns S3 event notifications (MinIO's webhook, S3's own
// Records form, EventBridge's "Object Created" / "Object Deleted") into
// work on the sources they name: an upload drops what the server knew of
// the key and warms its variants; a deletion drops it and purges them. It
// parses, filters (the recursion guard), deduplicates and queues; the
// work itself is given to it as functions, so it knows nothing of HTTP,
// libvips or the tiers.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is what happened to an object.
type Kind uint8

const (
	// Other is an event this server does not act on (an access, a tag,
	// S3's test event): answered, counted, ignored.
	Other Kind = iota
	Created
	Removed
)

func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Removed:
		return "removed"
	}
	return "other"
}

// Record is one object event, whatever form it came in.
type Record struct {
	Kind   Kind
	Name   string // the event's own name: "s3:ObjectCreated:Put", "Object Deleted", …
	Bucket string
	Key    string // decoded: as the object is named in the bucket
	// Sequencer orders the events of one key (hexadecimal, S3's and
	// MinIO's); with the ETag it tells a repeated delivery from a new event.
	Sequencer string
	ETag      string
}

// ErrNotEvent is a body that is not an S3 event notification in a form
// this server reads.
var ErrNotEvent = errors.New(`the body is not an S3 event notification: expected JSON with "Records" (S3, MinIO's webhook) or an EventBridge event with "detail-type" and "detail"`)

// notification is the union of the forms read: S3's and MinIO's Records,
// S3's test event, and one EventBridge event.
type notification struct {
	Records    *[]s3Record   `json:"Records"`
	Event      string        `json:"Event"` // "s3:TestEvent", sent when a notification is configured
	DetailType string        `json:"detail-type"`
	Detail     *bridgeDetail `json:"detail"`
}

type s3Record struct {
	EventName string `json:"eventName"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			ETag      string `json:"eTag"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

type bridgeDetail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		ETag      string `json:"etag"`
		Sequencer string `json:"sequencer"`
	} `json:"object"`
}

// Parse reads a notification body. A body that is JSON but no event form
// is ErrNotEvent; a record without a bucket or key, or with a key that
// does not decode, is an error naming the record.
func Parse(body []byte) ([]Record, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotEvent, jsonProblem(err))
	}
	switch {
	case n.Records != nil:
		return s3Records(*n.Records)
	case n.Event == "s3:TestEvent":
		return nil, nil
	case n.DetailType != "" && n.Detail != nil:
		return bridgeRecords(n)
	}
	return nil, ErrNotEvent
}

// jsonProblem names what is wrong with the JSON without echoing the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s", typ.Field, typ.Type)
	}
	return "not valid JSON"
}

func s3Records(rs []s3Record) ([]Record, error) {
	out := make([]Record, 0, len(rs))
	for i, r := range rs {
		// S3 names them "ObjectCreated:Put"; MinIO "s3:ObjectCreated:Put".
		name := strings.TrimPrefix(r.EventName, "s3:")
		kind := Other
		switch {
		case strings.HasPrefix(name, "ObjectCreated:"):
			kind = Created
		case strings.HasPrefix(name, "ObjectRemoved:"):
			kind = Removed
		}
		rec, err := record(kind, r.EventName, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Sequencer, r.S3.Object.ETag)
		if err != nil {
			return nil, fmt.Errorf("Records[%d]: %w", i, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func bridgeRecords(n notification) ([]Record, error) {
	kind := Other
	switch n.DetailType {
	case "Object Created":
		kind = Created
	case "Object Deleted":
		kind = Removed
	}
	d := n.Detail
	rec, err := record(kind, n.DetailType, d.Bucket.Name, d.Object.Key, d.Object.Sequencer, d.Object.ETag)
	if err != nil {
		return nil, fmt.Errorf("detail: %w", err)
	}
	return []Record{rec}, nil
}

// record checks and decodes one event. Keys arrive URL-encoded as a form
// value ("my+photo%C3%A9.jpg"), in both forms.
func record(kind Kind, name, bucket, rawKey, seq, etag string) (Record, error) {
	if name == "" {
		return Record{}, errors.New("the event has no name (eventName or detail-type)")
	}
	if kind == Other {
		return Record{Kind: Other, Name: name}, nil
	}
	if bucket == "" {
		return Record{}, errors.New("the event names no bucket")
	}
	if rawKey == "" {
		return Record{}, errors.New("the event names no object key")
	}
	key, err := url.QueryUnescape(rawKey)
	if err != nil {
		return Record{}, fmt.Errorf("the object key is not URL-encoded: %v", err)
	}
	return Record{Kind: kind, Name: name, Bucket: bucket, Key: key,
		Sequencer: strings.ToLower(seq), ETag: strings.Trim(etag, `"`)}, nil
}
