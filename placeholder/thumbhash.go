package placeholder

import "math"

// ThumbHash encodes p as a ThumbHash (Evan Wallace's format, version 1):
// the average colour, the aspect ratio, a luminance grid of up to 7 × 7
// DCT coefficients, 3 × 3 for each of two chroma channels and, when the
// picture has transparency, 5 × 5 for alpha, packed in 4-bit steps after
// a 5-byte header (6 with alpha). No Go module of it is served here, so it
// is written from the format's description; placeholder's tests decode
// its hashes with the reference JavaScript decoder and compare its bytes
// with the reference encoder's. p must pass Check.
func ThumbHash(p Pixels) []byte {
	w, h, n := p.W, p.H, p.W*p.H
	avg, alphaSum := averageColour(p)
	hasAlpha := alphaSum < float64(n)
	lLimit := 7.0
	if hasAlpha {
		lLimit = 5 // fewer luminance coefficients leave room for alpha's
	}
	long := float64(max(w, h))
	lx := max(1, int(math.Round(lLimit*float64(w)/long)))
	ly := max(1, int(math.Round(lLimit*float64(h)/long)))

	// Each pixel laid over the average colour, in the format's channels:
	// luminance, yellow-blue, red-green, alpha.
	l, pc, qc, ac := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		a := float64(p.RGBA[4*i+3]) / 255
		r := avg[0]*(1-a) + a/255*float64(p.RGBA[4*i])
		g := avg[1]*(1-a) + a/255*float64(p.RGBA[4*i+1])
		b := avg[2]*(1-a) + a/255*float64(p.RGBA[4*i+2])
		l[i], pc[i], qc[i], ac[i] = (r+g+b)/3, (r+g)/2-b, r-g, a
	}
	lum := dct(l, w, h, max(3, lx), max(3, ly))
	pch := dct(pc, w, h, 3, 3)
	qch := dct(qc, w, h, 3, 3)

	header24 := q(63*lum.dc) | q(31.5+31.5*pch.dc)<<6 | q(31.5+31.5*qch.dc)<<12 | q(31*lum.scale)<<18
	short := lx
	if w > h {
		short = ly // the header keeps the count along the short side
	}
	header16 := short | q(63*pch.scale)<<3 | q(63*qch.scale)<<9
	if hasAlpha {
		header24 |= 1 << 23
	}
	if w > h {
		header16 |= 1 << 15
	}
	hash := []byte{byte(header24), byte(header24 >> 8), byte(header24 >> 16), byte(header16), byte(header16 >> 8)}
	channels := []coefficients{lum, pch, qch}
	if hasAlpha {
		al := dct(ac, w, h, 5, 5)
		hash = append(hash, byte(q(15*al.dc)|q(15*al.scale)<<4))
		channels = append(channels, al)
	}
	// The AC coefficients two to a byte, low nibble first.
	start, k := len(hash), 0
	for _, c := range channels {
		for _, f := range c.ac {
			if k%2 == 0 {
				hash = append(hash, 0)
			}
			hash[start+k/2] |= byte(q(15*f) << (4 * (k % 2)))
			k++
		}
	}
	return hash
}

// averageColour is p's mean colour weighted by alpha (each channel 0 to
// 1) and the sum of the alphas.
func averageColour(p Pixels) ([3]float64, float64) {
	var avg [3]float64
	var alpha float64
	for i := 0; i < len(p.RGBA); i += 4 {
		a := float64(p.RGBA[i+3]) / 255
		for c := range 3 {
			avg[c] += a / 255 * float64(p.RGBA[i+c])
		}
		alpha += a
	}
	if alpha > 0 {
		for c := range avg {
			avg[c] /= alpha
		}
	}
	return avg, alpha
}

// coefficients are one channel's DCT: the constant term, the others
// (mapped into 0 to 1 by scale) and the largest magnitude among them.
type coefficients struct {
	dc    float64
	ac    []float64
	scale float64
}

// dct is the channel's cosine transform over an nx × ny triangle of
// frequencies (cx·ny < nx·(ny−cy)): the low frequencies that carry a
// placeholder's shapes, row by row.
func dct(ch []float64, w, h, nx, ny int) coefficients {
	var out coefficients
	fx := make([]float64, w)
	for cy := range ny {
		for cx := 0; cx*ny < nx*(ny-cy); cx++ {
			for x := range w {
				fx[x] = math.Cos(math.Pi / float64(w) * float64(cx) * (float64(x) + 0.5))
			}
			f := 0.0
			for y := range h {
				fy := math.Cos(math.Pi / float64(h) * float64(cy) * (float64(y) + 0.5))
				for x := range w {
					f += ch[x+y*w] * fx[x] * fy
				}
			}
			f /= float64(w * h)
			if cx == 0 && cy == 0 {
				out.dc = f
				continue
			}
			out.ac = append(out.ac, f)
			out.scale = max(out.scale, math.Abs(f))
		}
	}
	if out.scale > 0 {
		for i, f := range out.ac {
			out.ac[i] = 0.5 + 0.5/out.scale*f
		}
	}
	return out
}

// q rounds a quantised value as the format does (half away from zero:
// JavaScript's Math.round agrees for the non-negative values here).
func q(f float64) int { return int(math.Round(f)) }
