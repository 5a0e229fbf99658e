package decode

import "image-proxy/transform/internal/vips"

// Stream loads s at l for one caller alone, outside the decode cache: a
// decode made once and then stored elsewhere (transform's intermediate)
// has no next render to share it with. A failure is an *Error.
func (s Source) Stream(l Load) (*vips.Image, error) {
	img, err := s.load(l)
	if err != nil {
		return nil, s.Failed(l, "load", err)
	}
	return img, nil
}
