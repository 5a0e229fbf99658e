package warm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultQuiet is how long a file must stay unchanged before a watch warms
// it: long enough for a copy or an upload in progress to show as such,
// short enough that a new file is warmed within a couple of seconds.
const DefaultQuiet = time.Second

// watcher follows a directory tree with fsnotify: every directory is
// watched, new ones as they appear.
type watcher struct {
	root    string
	skip    []string // resolved directories left out (the disk cache)
	quiet   time.Duration
	fsw     *fsnotify.Watcher
	pending map[string]pendingFile // full path → last look
}

// pendingFile is a file seen changing: its size and modification time at
// the last look, and when that was.
type pendingFile struct {
	size int64
	mod  time.Time
	seen time.Time
}

// Watch warms, with w, every file under root created or changed from now
// until ctx is done, once it has stopped changing: no event for quiet, and
// the same size and modification time at two looks quiet apart. Files of a
// directory created (or moved in) are warmed too. Hidden files and the
// directories of skip are left out, as Paths does. At most workers
// sources are warmed at a time; report gets every result, from one
// goroutine at a time. Deleted files are left to the cache's eviction.
func (w *Warmer) Watch(ctx context.Context, root string, skip []string, quiet time.Duration, workers int, report func(Result)) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fsw.Close()
	wt := &watcher{root: root, quiet: quiet, fsw: fsw, pending: map[string]pendingFile{}}
	for _, s := range skip {
		wt.skip = append(wt.skip, resolved(s))
	}
	if err := wt.addTree(root, false); err != nil {
		return err
	}
	if w.watching != nil {
		w.watching()
	}
	ctx, stop := context.WithCancel(ctx) // a failed watch stops the workers too
	defer stop()
	q := newQueue()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range max(workers, 1) {
		wg.Go(func() {
			for rel := range q.take(ctx) {
				res := w.Source(ctx, rel)
				mu.Lock()
				report(res)
				mu.Unlock()
			}
		})
	}
	err = wt.loop(ctx, q.add)
	stop()
	wg.Wait()
	return err
}

// loop turns events into settled files until ctx is done.
func (wt *watcher) loop(ctx context.Context, settled func(rel string)) error {
	tick := time.NewTicker(max(wt.quiet/2, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-wt.fsw.Events:
			if !ok {
				return nil
			}
			wt.event(ev)
		case err, ok := <-wt.fsw.Errors:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return err
			}
			wt.addTree(wt.root, true) // events were lost: look at everything again
		case now := <-tick.C:
			wt.settle(now, settled)
		}
	}
}

func (wt *watcher) event(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Chmod) {
		return // a removed or renamed-away file: left to eviction
	}
	if wt.left(ev.Name) {
		return
	}
	fi, err := os.Lstat(ev.Name)
	switch {
	case err != nil:
	case fi.IsDir() && ev.Has(fsnotify.Create):
		wt.addTree(ev.Name, true)
	case fi.Mode().IsRegular():
		wt.pending[ev.Name] = pendingFile{fi.Size(), fi.ModTime(), time.Now()}
	}
}

// left reports whether path is out of the watch: hidden, or skipped.
func (wt *watcher) left(path string) bool {
	return strings.HasPrefix(filepath.Base(path), ".") || slices.Contains(wt.skip, resolved(path))
}

// addTree watches dir and every directory under it. With files, the files
// already there become pending: they may have been written before the
// watch was in place.
func (wt *watcher) addTree(dir string, files bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone or unreadable: nothing to watch
		}
		if p != dir && wt.left(p) || p == dir && slices.Contains(wt.skip, resolved(p)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return wt.fsw.Add(p)
		}
		if fi, err := d.Info(); err == nil && files && fi.Mode().IsRegular() {
			wt.pending[p] = pendingFile{fi.Size(), fi.ModTime(), time.Now()}
		}
		return nil
	})
}

// settle hands over the pending files that have been quiet long enough
// and look as they did at the last look.
func (wt *watcher) settle(now time.Time, settled func(rel string)) {
	for p, f := range wt.pending {
		if now.Sub(f.seen) < wt.quiet {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			delete(wt.pending, p)
			continue
		}
		if fi.Size() != f.size || !fi.ModTime().Equal(f.mod) {
			wt.pending[p] = pendingFile{fi.Size(), fi.ModTime(), now} // still being written
			continue
		}
		delete(wt.pending, p)
		if rel, err := filepath.Rel(wt.root, p); err == nil {
			settled(filepath.ToSlash(rel))
		}
	}
}

// queue hands settled files to the workers, each file once however
// often it settles before a worker takes it.
type queue struct {
	mu     sync.Mutex
	order  []string
	queued map[string]bool
	ready  chan struct{} // has a token while order is not empty
}

func newQueue() *queue {
	return &queue{queued: map[string]bool{}, ready: make(chan struct{}, 1)}
}

func (q *queue) add(rel string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued[rel] {
		return
	}
	q.queued[rel] = true
	q.order = append(q.order, rel)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take yields queued files until ctx is done.
func (q *queue) take(ctx context.Context) func(func(string) bool) {
	return func(yield func(string) bool) {
		for {
			q.mu.Lock()
			if len(q.order) > 0 {
				rel := q.order[0]
				q.order = q.order[1:]
				delete(q.queued, rel)
				if len(q.order) > 0 {
					select {
					case q.ready <- struct{}{}:
					default:
					}
				}
				q.mu.Unlock()
				if !yield(rel) {
					return
				}
				continue
			}
			q.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-q.ready:
			}
		}
	}
}
