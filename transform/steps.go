package transform

import (
	"context"
	"fmt"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// step is one stage of processing: it changes the render's own image in
// place (or replaces what the image holds), never the decode it came from.
type step struct {
	name string
	run  func(*vips.Image) error
}

func (p plan) steps() []step {
	return append([]step{
		{"resize", func(im *vips.Image) error { return resize(im, p.width, p.height, p.algorithm) }},
		{"colour", toSRGB},
		{"alpha", func(im *vips.Image) error { return alpha(im, p.out, p.shape.background) }},
		// Last, so the copy it makes is of the smallest pixels: output
		// size, 8-bit, flattened.
		{"orient", func(im *vips.Image) error {
			if p.animation {
				// Not rotated, whichever frames are kept: the same
				// source comes out the same way up as GIF, WebP or a still.
				return nil
			}
			return orient(im)
		}},
	}, p.shape.steps(p.out)...)
}

// process runs the steps on img in place, checking ctx between them. A
// step that fails is classified against s decoded at p.load.
func (p plan) process(ctx context.Context, s decode.Source, img *vips.Image) (err error) {
	sp := stage(ctx, "transform.resize")
	defer func() { sp.End(err) }()
	sp.Int("image.width", p.width)
	sp.Int("image.height", p.height)
	for _, st := range p.steps() {
		if ctx.Err() != nil {
			return canceled(ctx)
		}
		if err := st.run(img); err != nil {
			return broken(s, p.load, st.name, err)
		}
	}
	return nil
}

// resize brings one frame to w×h (every frame of an animation alike).
func resize(im *vips.Image, w, h int, a Algorithm) error {
	pages := vipsx.Pages(im)
	ph := vipsx.PageHeight(im)
	if im.Width() == w && ph == h {
		return nil
	}
	kernel := vips.KernelLanczos3
	if a == AlgorithmThumbnail {
		kernel = vips.KernelLinear
	}
	hscale := float64(w) / float64(im.Width())
	vscale := float64(h) / float64(ph)
	if err := im.Resize(hscale, &vips.ResizeOptions{Kernel: kernel, Vscale: vscale}); err != nil {
		return err
	}
	if pages > 1 {
		if im.Height() != h*pages {
			return fmt.Errorf("animation resized to %d rows, want %d", im.Height(), h*pages)
		}
		return im.SetPageHeight(h)
	}
	return nil
}

// toSRGB converts every source to 8-bit sRGB: through the embedded ICC
// profile when there is one (CMYK, Adobe RGB, Display P3), else libvips'
// own conversions (fallback CMYK profile, 16-bit and greyscale).
func toSRGB(im *vips.Image) error {
	if im.HasICCProfile() {
		err := im.IccTransform("srgb", &vips.IccTransformOptions{Embedded: true, Intent: vips.IntentRelative, Depth: 8})
		if err == nil {
			// Now plain sRGB: drop the profile (savers would otherwise
			// embed libvips' sRGB profile, kilobytes per image).
			return im.RemoveICCProfile()
		}
		// A broken profile is no reason to refuse the image.
	}
	if im.Interpretation() != vips.InterpretationSrgb || im.BandFormat() != vips.BandFormatUchar {
		return im.Colourspace(vips.InterpretationSrgb, nil)
	}
	return nil
}

// alpha flattens onto the background (white unless the options give one)
// for JPEG, the one output without transparency.
func alpha(im *vips.Image, out Format, bg [4]uint8) error {
	if out != FormatJPEG || !im.HasAlpha() {
		return nil
	}
	return im.Flatten(&vips.FlattenOptions{Background: []float64{float64(bg[0]), float64(bg[1]), float64(bg[2])}})
}

// orient applies the EXIF orientation so the output is upright without it.
// libheif applies HEIF's irot and imir itself, and heifload then drops the
// tag, so HEIF sources come here already upright and untagged.
func orient(im *vips.Image) error {
	if im.Orientation() <= 1 {
		return nil
	}
	// A rotation reads its input out of order, which a sequentially loaded
	// pipeline cannot serve; by now im is at its output size, so the copy
	// is small.
	if err := vipsx.HoldInMemory(im); err != nil {
		return err
	}
	if err := im.Autorot(nil); err != nil {
		return err
	}
	return im.RemoveOrientation()
}
