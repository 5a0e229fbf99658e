package cache

import "context"

// Purged is what one tier's purge of a source came to.
type Purged struct {
	Tier    string // the tier's Name
	Removed int    // entries removed
	Err     error  // why the tier could not purge (all or part); nil when it did
}

// Purge removes every result of the source at rel from each tier in turn,
// the shared ones included. A tier that fails does not stop the others.
func (t *tiered) Purge(ctx context.Context, rel string) []Purged {
	g := SourceGroup(rel)
	out := make([]Purged, len(t.levels))
	for i := range t.levels {
		n, err := t.levels[i].Purge(ctx, g)
		out[i] = Purged{Tier: t.levels[i].Name(), Removed: n, Err: err}
	}
	return out
}
