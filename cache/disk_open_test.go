package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fileConfig keeps values over 1 KB out of memory, so Open sends them as
// files once checked.
func fileConfig(dir string) Config {
	c := diskConfig(dir)
	c.MaxItemSize = 1 << 10
	return c
}

// open is Cache.Open of key with a 1-byte head; the caller closes a File.
func (e *env) open(t *testing.T, key string) (Hit, Status, bool) {
	t.Helper()
	h, st, ok := e.c.Open(context.Background(), key, 1)
	if h.File != nil {
		t.Cleanup(func() { h.File.Close() })
	}
	return h, st, ok
}

// whole is the value a hit stands for: its bytes, or its head and the
// rest of its file.
func whole(t *testing.T, h Hit) []byte {
	t.Helper()
	if h.File == nil {
		return h.Value
	}
	rest, err := io.ReadAll(h.File)
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(h.Value), rest...)
}

// backdate sets the entry's times an hour back, as for an entry written
// earlier: a rewrite now is then told from it by its time as well, whatever
// the clock's granularity.
func backdate(t *testing.T, p string) {
	t.Helper()
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
}

func TestDiskOpenChecksOnceThenSendsTheFile(t *testing.T) {
	for _, size := range []int{3 << 10, 30 << 10, heldMax + 1<<10} { // read whole (held); sent from the descriptor
		t.Run(fmt.Sprint(size), func(t *testing.T) { checkedOnce(t, size) })
	}
}

func checkedOnce(t *testing.T, size int) {
	dir := t.TempDir()
	e := newEnv(t, fileConfig(dir))
	val := value(size, 5)
	val[0] = 9 // the head
	e.fetch(t, "k", val)

	steps := []struct {
		file bool // a File, not bytes
	}{{false}, {true}, {true}} // read and checked first, then sent unread
	for i, s := range steps {
		h, st, ok := e.open(t, "k")
		if !ok || st != hitDisk {
			t.Fatalf("open %d: %s, %v", i, st, ok)
		}
		if (h.File != nil) != s.file {
			t.Errorf("open %d: file %v, want %v", i, h.File != nil, s.file)
		}
		if h.File != nil && (len(h.Value) != 1 || h.Value[0] != 9 || h.File.Len() != int64(len(val)-1)) {
			t.Errorf("open %d: head %v, %d bytes left", i, h.Value, h.File.Len())
		}
		if got := whole(t, h); !bytes.Equal(got, val) {
			t.Errorf("open %d: %d bytes, not the value", i, len(got))
		}
	}
	// Cached still gives bytes, and a value memory keeps is promoted.
	if v, st, ok := e.c.Cached(context.Background(), "k"); !ok || st != hitDisk || !bytes.Equal(v, val) {
		t.Errorf("Cached: %s, %v", st, ok)
	}
	small := value(500, 6)
	e.tiers[1].Set(context.Background(), "s", small)
	for i, want := range []Status{hitDisk, hitMemory} {
		h, st, ok := e.open(t, "s")
		if !ok || st != want || h.File != nil || !bytes.Equal(h.Value, small) {
			t.Errorf("small open %d: %s, %v, file %v", i, st, ok, h.File != nil)
		}
	}
}

// TestDiskOpenCatchesChangedFiles: a file rewritten in place, replaced or
// truncated after it was checked is read and checked again, and dropped.
func TestDiskOpenCatchesChangedFiles(t *testing.T) {
	flip := func(b []byte) []byte { b[len(b)-100] ^= 0xFF; return b }
	cases := []struct {
		name   string
		change func(t *testing.T, p string, raw []byte)
	}{
		{"rewritten in place", func(t *testing.T, p string, raw []byte) {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(flip(raw), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by rename", func(t *testing.T, p string, raw []byte) {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, flip(raw), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, p string, raw []byte) {
			if err := os.Truncate(p, int64(len(raw)/2)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, size := range []int{3 << 10, 30 << 10, heldMax + 1<<10} { // read whole (held); sent from the descriptor
		for _, c := range cases {
			t.Run(fmt.Sprint(c.name, size), func(t *testing.T) { changedEntry(t, size, c.change) })
		}
	}
}

func changedEntry(t *testing.T, size int, change func(t *testing.T, p string, raw []byte)) {
	dir := t.TempDir()
	e := newEnv(t, fileConfig(dir))
	e.fetch(t, "k", value(size, 5))
	p := entryFiles(t, dir)[0]
	backdate(t, p)
	for range 2 { // checked, then sent as a file
		e.open(t, "k")
	}
	if h, _, _ := e.open(t, "k"); h.File == nil {
		t.Fatal("a checked entry was not sent as a file")
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	change(t, p, raw)
	if _, st, ok := e.open(t, "k"); ok {
		t.Errorf("changed entry answered %s", st)
	}
	if got := testutil.ToFloat64(e.m.CacheCorrupt); got != 1 {
		t.Errorf("corrupt counter %v, want 1", got)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("changed entry not dropped: %v", err)
	}
}

// TestDiskFileOutlivesItsEntry: a File opened before its entry is purged,
// evicted or overwritten still reads the whole value it was opened on.
func TestDiskFileOutlivesItsEntry(t *testing.T) {
	key := SourceKey("photos/cat.jpg", "v1")
	val := value(30<<10, 4)
	cases := map[string]func(e *env){
		"purged":      func(e *env) { e.c.Purge(context.Background(), "photos/cat.jpg") },
		"overwritten": func(e *env) { e.tiers[1].Set(context.Background(), key, value(30<<10, 8)) },
		"evicted": func(e *env) {
			for i := range 40 { // 40 × 30 KB over the 1 MB disk
				e.tiers[1].Set(context.Background(), string(rune('a'+i)), value(30<<10, 1))
			}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e := newEnv(t, fileConfig(dir))
			e.fetch(t, key, val)
			e.open(t, key)
			h, _, _ := e.open(t, key)
			if h.File == nil {
				t.Fatal("not a file")
			}
			p := entryFiles81(t, dir)
			change(e)
			if _, err := os.Stat(p); name != "overwritten" && !os.IsNotExist(err) {
				t.Fatalf("entry still there: %v", err)
			}
			if got := whole(t, h); !bytes.Equal(got, val) {
				t.Errorf("%d bytes, not the value opened", len(got))
			}
		})
	}
}

// entryFiles81 is the one entry file of a SourceKey under dir.
func entryFiles81(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*", "*", "????????????????-*"))
	if len(m) != 1 {
		t.Fatalf("%d entry files", len(m))
	}
	return m[0]
}

// TestDiskHeldDescriptors: a checked entry's descriptor is held for the
// next hits, at most maxHeld of them, and let go when the entry is
// written again, forgotten, purged or evicted, or the tier closes.
func TestDiskHeldDescriptors(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, fileConfig(dir))
	d := e.tiers[1].(*diskTier)
	key := func(i int) string { return SourceKey(fmt.Sprint("photos/", i%3, ".jpg"), fmt.Sprint("v", i)) }
	for i := range maxHeld + 10 {
		e.fetch(t, key(i), value(3<<10, byte(i)))
		for range 3 { // checked, then read whole and held, then from the held descriptor
			if h, _, ok := e.open(t, key(i)); !ok || !bytes.Equal(whole(t, h), value(3<<10, byte(i))) {
				t.Fatalf("entry %d: not its value", i)
			}
		}
	}
	if n := d.heldCount(); n != maxHeld {
		t.Errorf("%d descriptors held, want %d", n, maxHeld)
	}
	last := key(maxHeld + 9)
	e.tiers[1].Set(context.Background(), last, value(3<<10, 1)) // written again
	if n := d.heldCount(); n != maxHeld-1 {
		t.Errorf("after a write: %d held, want %d", n, maxHeld-1)
	}
	if h, _, ok := e.open(t, last); !ok || !bytes.Equal(whole(t, h), value(3<<10, 1)) {
		t.Error("the rewritten entry did not answer its new value")
	}
	e.c.Purge(context.Background(), "photos/1.jpg")
	if n := d.heldCount(); n > maxHeld*2/3+1 {
		t.Errorf("after a purge of a third: %d held", n)
	}
	d.limit.Store(0) // everything is evicted by the next add
	d.add(diskName("another"), 1)
	if n := d.heldCount(); n != 0 {
		t.Errorf("after evicting everything: %d held", n)
	}
}

// TestDiskHeldDescriptorsUnderWrites: hits sharing a held descriptor while
// the entry is written again and again each get one whole value, never a
// mix or a closed descriptor's error.
func TestDiskHeldDescriptorsUnderWrites(t *testing.T) {
	e := newEnv(t, fileConfig(t.TempDir()))
	vals := [][]byte{value(3<<10, 1), value(20<<10, 2)}
	e.fetch(t, "k", vals[0])
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				if g == 0 && i%10 == 0 {
					e.tiers[1].Set(context.Background(), "k", vals[i/10%2])
					continue
				}
				h, _, ok := e.c.Open(context.Background(), "k", 1)
				if !ok {
					continue // between a write's rename and its indexing: a miss, never a wrong value
				}
				got := bytes.Clone(h.Value)
				if h.File != nil {
					rest, err := io.ReadAll(h.File)
					h.File.Close()
					if err != nil {
						t.Error(err)
						return
					}
					got = append(got, rest...)
				}
				if !bytes.Equal(got, vals[0]) && !bytes.Equal(got, vals[1]) {
					t.Errorf("a hit of %d bytes is neither value", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
}
