package transform

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"image-proxy/transform/internal/vips"
)

// Benchmarks use the large photographs of ../shared/corpus when present
// (they may not be copied into the repository); without them they skip.
// They are measurements, not tests.

func corpus(b *testing.B, name string) []byte {
	src, err := os.ReadFile("../../shared/corpus/" + name)
	if err != nil {
		b.Skip("corpus not available: ", err)
	}
	return src
}

// benchSource picks the photo from BENCH_SOURCE (default: the baseline
// 5120×2880 JPEG).
func benchSource(b *testing.B) []byte {
	name := os.Getenv("BENCH_SOURCE")
	if name == "" {
		name = "volna-baseline-5120x2880.jpg"
	}
	if src, err := os.ReadFile(name); err == nil {
		return src
	}
	return corpus(b, name)
}

// BenchmarkFloor is the yardstick: decode-shrink-resize-encode with the
// bindings directly (jpegload shrink=8, lanczos3 resize, WebP q80), no
// sniffing, checks or HTTP. Run it with the same parallelism as the server.
func BenchmarkFloor(b *testing.B) {
	src := benchSource(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			img, err := vips.NewJpegloadBuffer(src, &vips.JpegloadBufferOptions{Shrink: 8, Access: vips.AccessSequential})
			if err != nil {
				b.Fatal(err)
			}
			scale := 400 / float64(max(img.Width(), img.Height()))
			if err := img.Resize(scale, &vips.ResizeOptions{Kernel: vips.KernelLanczos3}); err != nil {
				b.Fatal(err)
			}
			if _, err := img.WebpsaveBuffer(&vips.WebpsaveBufferOptions{Q: 80, Effort: 4}); err != nil {
				b.Fatal(err)
			}
			img.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkRender is the same work through Render: what the server pays
// per cold transform, without HTTP.
func BenchmarkRender(b *testing.B) {
	src := benchSource(b)
	for _, f := range []Format{FormatWebP, FormatJPEG, FormatAVIF} {
		b.Run(f.String(), func(b *testing.B) {
			cfg := DefaultConfig()
			if s, err := strconv.Atoi(os.Getenv("BENCH_AVIF_SPEED")); err == nil {
				cfg.AVIFSpeed = s
			}
			tr := New(cfg)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tr.Render(context.Background(), src, Options{Box: 400, Format: f}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

// BenchmarkRenderOrientation renders the photo as stored and tagged with
// EXIF orientation 6 (a portrait from a phone), pixels untouched, so the
// two differ only by the rotation: 400 px WebP, as BenchmarkRender.
func BenchmarkRenderOrientation(b *testing.B) {
	src := benchSource(b)
	for _, o := range []int{1, 6} {
		b.Run("orientation-"+strconv.Itoa(o), func(b *testing.B) {
			s := withJPEGOrientation(b, src, o)
			tr := New(DefaultConfig())
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tr.Render(context.Background(), s, Options{Box: 400, Format: FormatWebP}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

// withJPEGOrientation replaces a JPEG's EXIF segments with one holding only
// orientation o, right after SOI.
func withJPEGOrientation(b testing.TB, src []byte, o int) []byte {
	b.Helper()
	if len(src) < 4 || src[0] != 0xFF || src[1] != 0xD8 {
		b.Fatal("not a JPEG")
	}
	exif := append([]byte("Exif\x00\x00"), exifOrientation(o)...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)}
	out = append(out, exif...)
	at := 2
	for at+4 <= len(src) && src[at] == 0xFF && src[at+1] != 0xDA {
		n := 2 + (int(src[at+2])<<8 | int(src[at+3]))
		if at+n > len(src) {
			b.Fatal("truncated JPEG segment")
		}
		if src[at+1] != 0xE1 || !bytes.HasPrefix(src[at+4:at+n], []byte("Exif\x00")) {
			out = append(out, src[at:at+n]...)
		}
		at += n
	}
	if at+4 > len(src) || src[at+1] != 0xDA {
		b.Fatal("the segments do not lead to SOS")
	}
	return append(out, src[at:]...)
}

// BenchmarkRenderManyVsSeparate renders the 8 variants a warm run makes of
// one photo (4 widths × 2 formats) with one RenderMany, and with 8 Render
// calls that each decode the source again. One op is every variant of the
// source, on one goroutine, so the two times compare directly.
func BenchmarkRenderManyVsSeparate(b *testing.B) {
	sources := []struct{ name, file string }{
		{"baseline", "volna-baseline-5120x2880.jpg"},
		{"progressive", "volna-5120x2880.jpg"},
	}
	sets := []struct {
		name    string
		formats []Format
	}{
		{"webp+jpeg", []Format{FormatWebP, FormatJPEG}},
		{"webp+avif", []Format{FormatWebP, FormatAVIF}},
	}
	for _, s := range sources {
		for _, set := range sets {
			var opts []Options
			for _, box := range []int{360, 720, 1200, 2200} {
				for _, f := range set.formats {
					opts = append(opts, Options{Box: box, Format: f})
				}
			}
			b.Run(s.name+"/"+set.name+"/many", func(b *testing.B) {
				src := corpus(b, s.file)
				tr := New(DefaultConfig())
				for b.Loop() {
					_, errs := tr.RenderMany(context.Background(), src, opts)
					for _, err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run(s.name+"/"+set.name+"/separate", func(b *testing.B) {
				src := corpus(b, s.file)
				tr := New(DefaultConfig())
				for b.Loop() {
					for _, o := range opts {
						if _, err := tr.Render(context.Background(), src, o); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkLoneVariant is the cost of a variant no other variant shares a
// decode with: 400 px WebP with the decode cache off (shrink-on-load 8,
// streamed), on but missed (familyBox's shrink 4, decoded into the cache),
// and on and hit (resize and encode of the kept decode only). One core.
func BenchmarkLoneVariant(b *testing.B) {
	src := benchSource(b)
	off := DefaultConfig()
	off.DecodeCacheSize = 0
	for _, c := range []struct {
		name   string
		cfg    Config
		source func(i int) string
		store  DecodeStore
	}{
		{"off", off, func(int) string { return "" }, nil},
		{"miss", DefaultConfig(), strconv.Itoa, nil},
		{"hit", DefaultConfig(), func(int) string { return "one source" }, nil},
		// A miss that keeps its decode: held in memory instead of
		// streamed, handed to a store that drops it (the proxy saves it
		// after the response), or saves it at once (its whole cost).
		{"persist", DefaultConfig(), strconv.Itoa, dropDecodes{}},
		{"persist+save", DefaultConfig(), strconv.Itoa, dropDecodes{save: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			tr := New(c.cfg)
			defer tr.Close()
			i := 0
			for b.Loop() {
				i++
				if _, err := tr.Render(context.Background(), src, Options{Box: 400, Format: FormatWebP, Source: c.source(i), Decodes: c.store}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dropDecodes keeps nothing: every Get misses; Put saves the decode when
// save is set, then drops it.
type dropDecodes struct{ save bool }

func (dropDecodes) Get(context.Context, string) ([]byte, bool) { return nil, false }

func (d dropDecodes) Put(_ string, dec *Decoded) {
	defer dec.Close()
	if d.save {
		if _, err := dec.Bytes(); err != nil {
			panic(err)
		}
	}
}

// fileDecodes reads every decode from a file, as a disk tier hit does
// (without its checksum): what a render from a persisted decode costs.
type fileDecodes struct{ dir string }

func (f fileDecodes) Get(_ context.Context, name string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(f.dir, url.PathEscape(name)))
	return b, err == nil
}

func (f fileDecodes) Put(name string, dec *Decoded) {
	defer dec.Close()
	b, err := dec.Bytes()
	if err == nil {
		err = os.WriteFile(filepath.Join(f.dir, url.PathEscape(name)), b, 0o644)
	}
	if err != nil {
		panic(err)
	}
}

// BenchmarkStoredDecode compares a render from a persisted decode, read
// from a file, with the direct render (decoding the source, the decode
// cache missing), for sizes 160 to 1200 px to WebP and JPEG, from the
// progressive and the baseline 5120×2880 photos of the corpus.
func BenchmarkStoredDecode(b *testing.B) {
	for _, photo := range []string{"volna-5120x2880.jpg", "volna-baseline-5120x2880.jpg"} {
		src := corpus(b, photo)
		store := fileDecodes{dir: b.TempDir()}
		n := 0 // every render a source of its own: the decode cache misses, in every run of -count
		tr := New(DefaultConfig())
		for _, size := range []int{160, 400, 800, 1200} {
			for _, out := range []Format{FormatWebP, FormatJPEG} {
				opts := Options{Box: size, Format: out}
				// Keep the decode first.
				if _, err := tr.Render(context.Background(), src, Options{Box: size, Format: out, Source: "keep", Decodes: store}); err != nil {
					b.Fatal(err)
				}
				for _, via := range []struct {
					name  string
					store DecodeStore
				}{{"direct", nil}, {"stored", store}} {
					b.Run(photo[:len(photo)-4]+"/"+strconv.Itoa(size)+"/"+out.String()+"/"+via.name, func(b *testing.B) {
						for b.Loop() {
							n++
							opts.Source, opts.Decodes = "render "+strconv.Itoa(n), via.store
							if _, err := tr.Render(context.Background(), src, opts); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
		tr.Close()
	}
}

// BenchmarkCoverVsResize compares a cover crop of a 400×400 box (centre,
// then smart) with a plain resize into the same box, from the same
// photo (BENCH_SOURCE or the corpus; a synthetic 5120×2880 JPEG without
// them), to WebP: what a crop costs over the fit it starts from.
func BenchmarkCoverVsResize(b *testing.B) {
	src, err := os.ReadFile(os.Getenv("BENCH_SOURCE"))
	if err != nil {
		if src, err = os.ReadFile("../../shared/corpus/volna-baseline-5120x2880.jpg"); err != nil {
			src = baselineJPEG(b, 5120, 2880, 0)
		}
	}
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"resize", Options{Box: 400, Format: FormatWebP}},
		{"cover-centre", Options{Fit: FitCover, Width: 400, Height: 400, Format: FormatWebP}},
		{"cover-smart", Options{Fit: FitCover, Width: 400, Height: 400, Gravity: GravitySmart, Format: FormatWebP}},
	} {
		b.Run(c.name, func(b *testing.B) {
			tr := New(DefaultConfig())
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tr.Render(context.Background(), src, c.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
