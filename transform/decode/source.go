// Package decode is the layer under transform's pipeline that turns a
// source's bytes into pixels. It reads headers, it alone calls the
// format's loader (transform's format table defines them), and it hands
// each render its source decoded at the load the render's plan chose:
// streamed for that render alone, or shared through the decode cache with
// the other variants of the same source (decoder.go). It knows nothing of
// plans, steps or encoders; the pipeline asks it for "this source at this
// load" and gets an image of its own to change.
package decode

import (
	"errors"
	"fmt"

	"image-proxy/imageformat"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// Load is how a source is loaded: which frames, and the shrink or scale
// its loader applies while decoding. Two renders share a decode only when
// they ask for the same Load.
type Load struct {
	Pages  int     // 1, or -1 for every frame
	Shrink int     // JPEG only: 1, 2, 4 or 8
	Scale  float64 // WebP and SVG only; 0 = 1
}

// ScaleOrOne is Scale, with 0 meaning 1.
func (l Load) ScaleOrOne() float64 {
	if l.Scale == 0 {
		return 1
	}
	return l.Scale
}

// Loader is one format's libvips loader, called by name on the bytes in
// memory. Loaders read sequentially, so a decode streams through the
// pipeline instead of holding the whole image, and fail on truncated or
// corrupt data rather than filling it with grey.
type Loader func(src []byte, l Load) (*vips.Image, error)

// Header is what a source's header says, before any pixel is decoded.
type Header struct {
	Width, PageHeight int
	Pages             int // frames in the file
	HasAlpha          bool
	PelBytes          int // bands × sample size, as loaded
	Orientation       int // EXIF orientation, 0 or 1 when none
	// Progressive: a JPEG in several scans (or an interlaced PNG or GIF).
	Progressive bool
}

// Source is one source image: its bytes, its format's loader, the caller's
// identity for it, and its header once read.
type Source struct {
	Format imageformat.Format
	Loader Loader
	// Animated: the format can keep several frames (GIF, WebP); a TIFF's
	// pages or a HEIF's images are not an animation.
	Animated bool
	// ID is an opaque identity of Bytes, different whenever they may
	// differ; decodes of one ID are shared. Empty: never shared.
	ID     string
	Bytes  []byte
	Header Header // from ReadHeader
}

// ReadHeader reads the header only: the named loader decodes nothing
// until pixels are asked for.
func (s Source) ReadHeader() (Header, error) {
	head, err := s.load(Load{Pages: 1})
	if err != nil {
		return Header{}, err
	}
	defer head.Close()
	return Header{Width: head.Width(), PageHeight: vipsx.PageHeight(head), Pages: framesInFile(head),
		HasAlpha: head.HasAlpha(), PelBytes: pelBytes(head), Orientation: head.Orientation(),
		Progressive: interlaced(head)}, nil
}

// Animation tells whether the source has several frames in an animated
// format, whether or not a render keeps them.
func (s Source) Animation() bool { return s.Header.Pages > 1 && s.Animated }

// ProgressiveJPEG tells whether the source is a JPEG in several scans:
// libjpeg decodes every scan whatever the shrink, so it costs about the
// same to decode at any shrink, and a finer one saves it little.
func (s Source) ProgressiveJPEG() bool {
	return s.Format == imageformat.JPEG && s.Header.Progressive
}

// load calls the source's loader: the one place in transform that does.
func (s Source) load(l Load) (*vips.Image, error) {
	if s.Loader == nil {
		return nil, errors.New("no loader")
	}
	return s.Loader(s.Bytes, l)
}

// Failed describes a failure at step, after the header loaded, of a render
// that loads the source at l. Only a source that does not decode is the
// client's problem; when it decodes, the failure is ours and err, libvips'
// text, is for the log. The extra decode runs on this error path only.
func (s Source) Failed(l Load, step string, err error) *Error {
	return &Error{Step: step, Err: err, Corrupt: s.decodes(l)}
}

// decodes runs the load at l (same loader, shrink and fail-on setting as
// the render's) over every pixel, and nothing else: what fails here is the
// file. The pixels stream in order into a sum, so nothing can read out of
// order and memory stays as small as a render's.
func (s Source) decodes(l Load) error {
	im, err := s.load(l)
	if err != nil {
		return err
	}
	defer im.Close()
	_, err = im.Avg()
	return err
}

// Error is why the decode layer gave a render no image.
type Error struct {
	Step string // where it failed: load, decode, copy, wait
	Err  error  // libvips' text, or why the wait ended
	// Corrupt is the source's own error when it does not decode at the
	// render's load (the client's problem); nil when it decodes, and the
	// failure is ours.
	Corrupt error
	// Canceled: the render stopped waiting for another render's decode,
	// because its context ended or the gate did not let it back in.
	Canceled bool
}

func (e *Error) Error() string {
	if e.Corrupt != nil {
		return fmt.Sprintf("%s: %v (decoding the source: %v)", e.Step, e.Err, e.Corrupt)
	}
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// interlaced reads the flag libvips' JPEG, PNG and GIF loaders set for a
// progressive or interlaced file; absent means sequential.
func interlaced(im *vips.Image) bool {
	v, err := im.GetInt("interlaced")
	return err == nil && v != 0
}

// framesInFile is the source's frame count, whatever was loaded.
func framesInFile(im *vips.Image) int {
	if n, err := im.GetInt("n-pages"); err == nil && n > 1 {
		return n
	}
	return 1
}
