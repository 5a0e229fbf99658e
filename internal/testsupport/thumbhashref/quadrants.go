package thumbhashref

import (
	"fmt"
	"math"
)

// Quadrants is the mean colour (R, G, B, 0 to 255) of each quarter of a
// w × h RGBA picture: top left, top right, bottom left, bottom right.
// Transparent pixels are laid over white, as the placeholders take them.
func Quadrants(w, h int, rgba []byte) [4][3]float64 {
	var sum [4][3]float64
	var count [4]float64
	for y := range h {
		for x := range w {
			i := 4 * (y*w + x)
			qd := 0
			if 2*x >= w {
				qd++
			}
			if 2*y >= h {
				qd += 2
			}
			a := float64(rgba[i+3]) / 255
			for c := range 3 {
				sum[qd][c] += float64(rgba[i+c])*a + 255*(1-a)
			}
			count[qd]++
		}
	}
	for qd := range sum {
		for c := range 3 {
			sum[qd][c] /= max(count[qd], 1)
		}
	}
	return sum
}

// Resembles reports how far apart two pictures' quadrant means are: the
// largest difference of one channel in one quadrant, and an error naming
// it when it is over tolerance.
func Resembles(got, want [4][3]float64, tolerance float64) error {
	for qd := range got {
		for c := range 3 {
			if d := math.Abs(got[qd][c] - want[qd][c]); d > tolerance {
				return fmt.Errorf("quadrant %d channel %d: %.1f, the image has %.1f (off by %.1f, tolerance %.0f); all: %v vs %v",
					qd, c, got[qd][c], want[qd][c], d, tolerance, got, want)
			}
		}
	}
	return nil
}
