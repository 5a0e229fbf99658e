package warm

import (
	"errors"
	"fmt"
	"os"

	"image-proxy/cache"
	"image-proxy/setting"
)

// Where warmed variants may go. A variant warmed into the memory tier is
// gone with the process, and a live request fills memory on its own; so
// warming into the cache needs a result tier that outlives the process:
// the disk tier or the S3 result tier. Static files (--out) need none.

// Persistent reports whether c configures a result tier that outlives the
// process.
func Persistent(c cache.Config) bool {
	return c.Enabled && (c.DiskEnabled || c.ResultPrefix != "")
}

// ErrNoResultTier refuses a warm into the cache when no tier would keep it.
var ErrNoResultTier = errors.New("no result tier to warm: set IMAGE_PROXY_ENABLE_DISK_CACHE=true (and IMAGE_PROXY_CACHE_DISK_PATH) or IMAGE_PROXY_S3_RESULT_PREFIX, or export static files with --out DIR")

// Validate checks the lists against maxBox (IMAGE_PROXY_MAX_SIZE) and that
// warming on change has a tier that outlives the process to warm into.
func (c Config) Validate(maxBox int, cc cache.Config) error {
	if _, err := ParseSizes(c.Sizes, maxBox); err != nil {
		return listSetting("IMAGE_PROXY_WARM_SIZES", c.Sizes, err)
	}
	if _, err := ParseFormats(c.Formats); err != nil {
		return listSetting("IMAGE_PROXY_WARM_FORMATS", c.Formats, err)
	}
	if c.OnChange && !Persistent(cc) {
		return &setting.Error{Name: "IMAGE_PROXY_WARM_ON_CHANGE", Value: "true",
			Allowed: "false unless a result tier outlives the process (IMAGE_PROXY_ENABLE_DISK_CACHE=true or IMAGE_PROXY_S3_RESULT_PREFIX)"}
	}
	return nil
}

// Skip is the directories of c that a walk or a watch of the root leaves
// out: the disk tier's, which may lie inside the root.
func Skip(c cache.Config) []string {
	if c.Enabled && c.DiskEnabled {
		return []string{c.DiskPath}
	}
	return nil
}

// CheckRoot checks that root, the local origin's directory, is one: warm
// reads the originals found there.
func CheckRoot(root string) error {
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("IMAGE_PROXY_ROOT_PATH=%s is not a directory: warm reads the originals of the local root", root)
	}
	return nil
}
