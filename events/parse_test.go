package events

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// minioPut is what MinIO's webhook target sends for an upload (its
// event.Log: EventName, Key, Records), trimmed of fields nobody reads.
const minioPut = `{"EventName":"s3:ObjectCreated:Put","Key":"photos/originals/my+cat%C3%A9.jpg",
"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-12-03T09:00:00.000Z",
"eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minioadmin"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"photos","arn":"arn:aws:s3:::photos"},
"object":{"key":"originals%2Fmy+cat%C3%A9.jpg","size":1234,"eTag":"\"0123abcd\"","contentType":"image/jpeg","sequencer":"187D4F1A2B3C4D5E"}}}]}`

const awsDelete = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete",
"s3":{"bucket":{"name":"photos"},"object":{"key":"originals/dog.png","sequencer":"0055AED6DCD90281E5"}}}]}`

const bridgeCreated = `{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
"source":"aws.s3","account":"111122223333","time":"2026-12-03T00:00:00Z","region":"eu-west-1",
"resources":["arn:aws:s3:::photos"],"detail":{"version":"0","bucket":{"name":"photos"},
"object":{"key":"originals/a+b.jpg","size":5,"etag":"b1946ac92492d2347c6235b4d2611184","sequencer":"617f08299329d189"},
"request-id":"N4N7GDK58NMKJ12R","reason":"PutObject"}}`

const bridgeDeleted = `{"version":"0","detail-type":"Object Deleted","source":"aws.s3",
"detail":{"bucket":{"name":"photos"},"object":{"key":"originals/a.jpg","sequencer":"617f0837b476e463"},"deletion-type":"Permanently Deleted"}}`

func TestParse(t *testing.T) {
	cases := []struct {
		name, body string
		want       []Record
	}{
		{"minio upload, key decoded", minioPut, []Record{{Kind: Created, Name: "s3:ObjectCreated:Put", Bucket: "photos",
			Key: "originals/my caté.jpg", Sequencer: "187d4f1a2b3c4d5e", ETag: "0123abcd"}}},
		{"s3 delete", awsDelete, []Record{{Kind: Removed, Name: "ObjectRemoved:Delete", Bucket: "photos",
			Key: "originals/dog.png", Sequencer: "0055aed6dcd90281e5"}}},
		{"eventbridge created", bridgeCreated, []Record{{Kind: Created, Name: "Object Created", Bucket: "photos",
			Key: "originals/a b.jpg", Sequencer: "617f08299329d189", ETag: "b1946ac92492d2347c6235b4d2611184"}}},
		{"eventbridge deleted", bridgeDeleted, []Record{{Kind: Removed, Name: "Object Deleted", Bucket: "photos",
			Key: "originals/a.jpg", Sequencer: "617f0837b476e463"}}},
		{"other kinds are records of kind Other", `{"Records":[{"eventName":"s3:ObjectAccessed:Get","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
			[]Record{{Kind: Other, Name: "s3:ObjectAccessed:Get"}}},
		{"eventbridge other", `{"detail-type":"Object Tags Added","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`,
			[]Record{{Kind: Other, Name: "Object Tags Added"}}},
		{"s3 test event", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-03T00:00:00Z","Bucket":"photos"}`, nil},
		{"no records", `{"Records":[]}`, []Record{}},
		{"several records", `{"Records":[{"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"x.jpg"}}},
			{"eventName":"ObjectRemoved:DeleteMarkerCreated","s3":{"bucket":{"name":"b"},"object":{"key":"y.jpg"}}}]}`,
			[]Record{{Kind: Created, Name: "ObjectCreated:Copy", Bucket: "b", Key: "x.jpg"},
				{Kind: Removed, Name: "ObjectRemoved:DeleteMarkerCreated", Bucket: "b", Key: "y.jpg"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d records %+v, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct{ name, body, says string }{
		{"empty", ``, "not valid JSON"},
		{"not json", `hello`, "not valid JSON at byte 1"},
		{"truncated", `{"Records":[`, "not valid JSON"},
		{"a json array", `[1,2]`, "must be"},
		{"an object of nothing known", `{"hello":"world"}`, "not an S3 event notification"},
		{"records not a list", `{"Records":{"a":1}}`, "Records must be"},
		{"eventbridge without detail", `{"detail-type":"Object Created"}`, "not an S3 event notification"},
		{"record without a name", `{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "Records[0]: the event has no name"},
		{"record without a bucket", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}`, "Records[0]: the event names no bucket"},
		{"record without a key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]}`, "no object key"},
		{"key badly encoded", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%zz"}}}]}`, "not URL-encoded"},
		{"second record bad", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a"}}},{"eventName":"ObjectCreated:Put"}]}`, "Records[1]"},
		{"detail without key", `{"detail-type":"Object Deleted","detail":{"bucket":{"name":"b"}}}`, "detail: the event names no object key"},
		{"size of wrong type", `{"Records":[{"eventName":3}]}`, "must be string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			if strings.Contains(c.name, "json") && !errors.Is(err, ErrNotEvent) {
				t.Errorf("error %q is not ErrNotEvent", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{minioPut, awsDelete, bridgeCreated, bridgeDeleted, `{"Event":"s3:TestEvent"}`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	scope := Scope{Bucket: "photos", Prefix: "originals/", Own: []string{"results/"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := Parse(body)
		if err != nil {
			if len(recs) != 0 {
				t.Fatal("records with an error")
			}
			return
		}
		for _, r := range recs {
			if r.Kind != Other && (r.Bucket == "" || r.Key == "") {
				t.Fatalf("record without bucket or key: %+v", r)
			}
			rel, why := scope.Rel(r)
			if (rel == "") == (why == "") {
				t.Fatalf("Rel(%+v) = %q, %q: exactly one must be set", r, rel, why)
			}
			if rel != "" && (slices.Contains(strings.Split(rel, "/"), "..") || strings.HasPrefix(r.Key, "results/")) {
				t.Fatalf("Rel(%+v) = %q: out of scope", r, rel)
			}
		}
	})
}
