package imageformat

import "image-proxy/setting"

// Algorithm selects the resampling route.
type Algorithm uint8

const (
	// AlgorithmAuto: shrink-on-load as far as the target allows, then lanczos3.
	AlgorithmAuto Algorithm = iota
	// AlgorithmLanczos3: keep a 2x margin before the final lanczos3 pass (best quality).
	AlgorithmLanczos3
	// AlgorithmThumbnail: the fastest route (maximal shrink-on-load, cheap kernel).
	AlgorithmThumbnail
)

var algorithmNames = [...]string{"auto", "lanczos3", "thumbnail"}

func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return "auto"
}

// ParseAlgorithm accepts the contract's names, case-insensitively.
func ParseAlgorithm(s string) (Algorithm, bool) {
	for i, n := range algorithmNames {
		if EqualFold(s, n) {
			return Algorithm(i), true
		}
	}
	return AlgorithmAuto, false
}

// UnmarshalText lets an Algorithm be a setting. The error is a
// *setting.Error without a Name: only the caller knows where the text came
// from.
func (a *Algorithm) UnmarshalText(text []byte) error {
	v, ok := ParseAlgorithm(string(text))
	if !ok {
		return &setting.Error{Value: string(text), Allowed: "lanczos3, thumbnail or auto"}
	}
	*a = v
	return nil
}

// MarshalText writes the name UnmarshalText reads.
func (a Algorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }
