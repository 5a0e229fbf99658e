package cache

import (
	"context"
	"io"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"image-proxy/metrics"
)

// TestTracedTiersKeepTheLocalPath: with a real tracer provider every tier
// is wrapped, and the wrapper must still say which tiers are on this
// machine, or Cached finds nothing and every memory hit goes through the
// flight and the hang-up watch. The spans prove the wrappers were in place.
func TestTracedTiersKeepTheLocalPath(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	mem, err := NewMemoryTier(1<<20, 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	disk := NewDiskTier(t.TempDir(), 1<<20, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	remote := newMapTier("remote")
	tiers := Traced([]Tier{mem, disk, remote}, tp)
	for i, want := range []bool{true, true, false} {
		if got := tiers[i].Local(); got != want {
			t.Errorf("traced tier %d (%s): Local() = %v, want %v", i, tiers[i].Name(), got, want)
		}
	}
	c := New(tiers, nil)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()

	cases := []struct {
		name, key string
		put       Tier
		want      Status
		found     bool
	}{
		{"memory hit", "k-mem", mem, HitStatus(metrics.TierMemory), true},
		{"disk hit", "k-disk", disk, HitStatus(metrics.TierDisk), true},
		{"remote is not looked at", "k-remote", remote, StatusMiss, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.put.Set(ctx, tc.key, []byte("value of "+tc.key))
			v, st, ok := c.Cached(ctx, tc.key)
			if ok != tc.found || st != tc.want {
				t.Fatalf("Cached(%q) = %q, %v; want %q, %v", tc.key, st, ok, tc.want, tc.found)
			}
			if ok && string(v) != "value of "+tc.key {
				t.Fatalf("Cached(%q) = %q", tc.key, v)
			}
		})
	}
	if len(exp.GetSpans()) == 0 {
		t.Fatal("no cache spans recorded: the tiers were not traced")
	}
}
