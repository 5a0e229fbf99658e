package warm

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"image-proxy/cache"
	"image-proxy/origin"
	"image-proxy/request"
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

// Validate checks the lists against maxBox (IMAGE_PROXY_MAX_SIZE), the
// presets against those controls define (IMAGE_PROXY_PRESETS), that
// warming on change has a tier that outlives the process to warm into, and
// that the events' export prefix has a bucket (s3) and overlaps neither its
// originals nor the results (cc.ResultPrefix).
func (c Config) Validate(maxBox int, cc cache.Config, s3 origin.S3Config, controls request.ControlsConfig) error {
	if _, err := ParseSizes(c.Sizes, maxBox); err != nil {
		return listSetting("IMAGE_PROXY_WARM_SIZES", c.Sizes, err)
	}
	if _, err := ParseFormats(c.Formats); err != nil {
		return listSetting("IMAGE_PROXY_WARM_FORMATS", c.Formats, err)
	}
	if _, err := ParseDPRs(c.DPRs); err != nil {
		return listSetting("IMAGE_PROXY_WARM_DPRS", c.DPRs, err)
	}
	if _, err := ParsePresets(c.Presets, controls, maxBox); err != nil {
		if _, ok := err.(*ListError); !ok {
			return err // IMAGE_PROXY_PRESETS itself: the controls' own error
		}
		return listSetting("IMAGE_PROXY_WARM_PRESETS", c.Presets, err)
	}
	if c.OnChange && !Persistent(cc) {
		return &setting.Error{Name: "IMAGE_PROXY_WARM_ON_CHANGE", Value: "true",
			Allowed: "false unless a result tier outlives the process (IMAGE_PROXY_ENABLE_DISK_CACHE=true or IMAGE_PROXY_S3_RESULT_PREFIX)"}
	}
	return c.validateEventsExport(s3, cc)
}

// validateEventsExport: IMAGE_PROXY_EVENTS_EXPORT_PREFIX is a key prefix
// ending in / in the originals' bucket, clear of the originals and the
// results (CheckExportPrefix); empty is no export.
func (c Config) validateEventsExport(s3 origin.S3Config, cc cache.Config) error {
	const name = "IMAGE_PROXY_EVENTS_EXPORT_PREFIX"
	p := c.EventsExportPrefix
	switch {
	case p == "":
		return nil
	case !s3.Enabled():
		return fmt.Errorf("invalid setting %s: it needs IMAGE_PROXY_S3_BUCKET", name)
	case !strings.HasSuffix(p, "/"):
		return &setting.Error{Name: name, Value: p, Allowed: "a key prefix ending in /, such as static/"}
	}
	if err := origin.CheckKeyPrefix(name, p); err != nil {
		return err
	}
	originals, results := Places(s3, cc)
	if err := CheckExportPrefix(s3.Bucket, p, originals, results); err != nil {
		return fmt.Errorf("invalid setting %s=%q: %w", name, p, err)
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

// Place is a key prefix in a bucket: where the originals, the results or
// an export live.
type Place struct{ Bucket, Prefix string }

// String is the place as an s3:// URL.
func (p Place) String() string { return "s3://" + p.Bucket + "/" + p.Prefix }

// exportRule is the rule CheckExportPrefix enforces, named in its errors.
const exportRule = "an export prefix must neither contain nor lie inside the originals' prefix (IMAGE_PROXY_S3_PREFIX) or the results' (IMAGE_PROXY_S3_RESULT_PREFIX) in the same bucket, " +
	"where exported files would be read as originals or results (with an empty IMAGE_PROXY_S3_PREFIX the bucket's originals are every key outside the result and export prefixes, so only the whole bucket is refused)"

// CheckExportPrefix refuses an export to exportPrefix in bucket that
// overlaps (one is a prefix of the other, in the same bucket) the
// originals or the results (a zero Place: none). An empty originals prefix
// is the whole bucket but for the result and export prefixes, which
// listings and events leave out: there, only an export into the whole
// bucket is refused. `warm --out s3://…` and IMAGE_PROXY_EVENTS_EXPORT_PREFIX
// are both checked with it.
func CheckExportPrefix(bucket, exportPrefix string, originals, results Place) error {
	at := Place{bucket, exportPrefix}
	overlaps := func(p Place) bool {
		return p.Bucket == bucket && (strings.HasPrefix(exportPrefix, p.Prefix) || strings.HasPrefix(p.Prefix, exportPrefix))
	}
	switch {
	case originals.Bucket == bucket && exportPrefix == "":
		return fmt.Errorf("%s is the whole bucket of the originals: %s", at, exportRule)
	case originals.Prefix != "" && overlaps(originals):
		return fmt.Errorf("%s overlaps the originals at %s: %s", at, originals, exportRule)
	case results.Prefix != "" && overlaps(results):
		return fmt.Errorf("%s overlaps the results at %s: %s", at, results, exportRule)
	}
	return nil
}

// resultPlace is where the shared result tier keeps its objects: in the
// originals' bucket, under IMAGE_PROXY_S3_RESULT_PREFIX (none when unset).
func resultPlace(s3 origin.S3Config, cc cache.Config) Place {
	if cc.ResultPrefix == "" {
		return Place{}
	}
	return Place{s3.Bucket, cc.ResultPrefix}
}

// Places are the originals' and the results' places in the bucket, for
// CheckExportPrefix.
func Places(s3 origin.S3Config, cc cache.Config) (originals, results Place) {
	return Place{s3.Bucket, s3.Prefix}, resultPlace(s3, cc)
}
