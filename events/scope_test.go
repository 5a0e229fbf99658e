package events

import "testing"

func TestScope(t *testing.T) {
	rec := func(kind Kind, bucket, key string) Record {
		return Record{Kind: kind, Name: "n", Bucket: bucket, Key: key}
	}
	prefixed := Scope{Bucket: "photos", Prefix: "originals/", Own: []string{"results/", "resized/"}}
	// The originals' prefix empty: the server's own prefixes lie inside
	// it and must still be excluded (the recursion guard).
	whole := Scope{Bucket: "photos", Own: []string{"results/", "", "resized/"}}
	cases := []struct {
		name     string
		s        Scope
		r        Record
		rel, why string
	}{
		{"an original", prefixed, rec(Created, "photos", "originals/a/cat.jpg"), "a/cat.jpg", ""},
		{"a deletion", prefixed, rec(Removed, "photos", "originals/cat.jpg"), "cat.jpg", ""},
		{"another bucket", prefixed, rec(Created, "other", "originals/cat.jpg"), "", ReasonBucket},
		{"outside the prefix", prefixed, rec(Created, "photos", "misc/cat.jpg"), "", ReasonPrefix},
		{"the prefix is not a folder match", prefixed, rec(Created, "photos", "originalsX/cat.jpg"), "", ReasonPrefix},
		{"our results", whole, rec(Created, "photos", "results/ab/cd/ab12-ef.bin"), "", ReasonOwn},
		{"our export", whole, rec(Created, "photos", "resized/cat-360.webp"), "", ReasonOwn},
		{"our export, deleted", whole, rec(Removed, "photos", "resized/cat-360.webp"), "", ReasonOwn},
		{"whole bucket original", whole, rec(Created, "photos", "cat.jpg"), "cat.jpg", ""},
		{"other kind", whole, rec(Other, "", ""), "", ReasonKind},
		{"folder marker", prefixed, rec(Created, "photos", "originals/new/"), "", ReasonDirectory},
		{"the prefix itself", prefixed, rec(Created, "photos", "originals/"), "", ReasonDirectory},
		{"hidden file", prefixed, rec(Created, "photos", "originals/.env"), "", ReasonPath},
		{"dot-dot", prefixed, rec(Created, "photos", "originals/../secret.jpg"), "", ReasonPath},
		{"empty segment", prefixed, rec(Created, "photos", "originals/a//b.jpg"), "", ReasonPath},
		{"percent in a name stays as is", prefixed, rec(Created, "photos", "originals/100%.jpg"), "100%.jpg", ""},
		{"spaces and unicode", prefixed, rec(Created, "photos", "originals/my caté.jpg"), "my caté.jpg", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rel, why := c.s.Rel(c.r)
			if rel != c.rel || why != c.why {
				t.Errorf("Rel = %q, %q; want %q, %q", rel, why, c.rel, c.why)
			}
		})
	}
}
