package warm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"image-proxy/cache"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/setting"
)

// TestWhereAWarmMayGo: warming into the cache needs a tier that outlives
// the process, and so does warming on change; the disk tier's directory is
// left out of walks and watches.
func TestWhereAWarmMayGo(t *testing.T) {
	const onChange = `invalid setting IMAGE_PROXY_WARM_ON_CHANGE="true": must be false unless a result tier outlives the process (IMAGE_PROXY_ENABLE_DISK_CACHE=true or IMAGE_PROXY_S3_RESULT_PREFIX)`
	memory := cache.Config{Enabled: true, DiskPath: "/var/cache/ip"}
	disk := cache.Config{Enabled: true, DiskEnabled: true, DiskPath: "/var/cache/ip"}
	s3 := cache.Config{Enabled: true, ResultPrefix: "results/", DiskPath: "/var/cache/ip"}
	off := cache.Config{Enabled: false, DiskEnabled: true, ResultPrefix: "results/", DiskPath: "/var/cache/ip"}
	for _, c := range []struct {
		name       string
		cache      cache.Config
		persistent bool
		skip       []string
	}{
		{"memory only", memory, false, nil},
		{"disk", disk, true, []string{"/var/cache/ip"}},
		{"S3 result tier", s3, true, nil},
		{"cache off", off, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Persistent(c.cache); got != c.persistent {
				t.Errorf("Persistent: %v, want %v", got, c.persistent)
			}
			if got := Skip(c.cache); !slices.Equal(got, c.skip) {
				t.Errorf("Skip: %v, want %v", got, c.skip)
			}
			cfg := Config{Sizes: "360,720", Formats: "webp", DPRs: "1", OnChange: true}
			err := cfg.Validate(4000, c.cache, origin.S3Config{}, request.ControlsConfig{})
			var se *setting.Error
			switch {
			case c.persistent && err != nil:
				t.Errorf("on change with a persistent tier: %v", err)
			case !c.persistent && (!errors.As(err, &se) || err.Error() != onChange):
				t.Errorf("on change without one: %v, want %s", err, onChange)
			}
			cfg.OnChange = false
			if err := cfg.Validate(4000, c.cache, origin.S3Config{}, request.ControlsConfig{}); err != nil {
				t.Errorf("without on change: %v", err)
			}
		})
	}
}

// TestConfigValidateNamesTheVariable: a bad list is refused with the
// variable, the value and the rule of its items.
func TestConfigValidateNamesTheVariable(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Sizes: "0", Formats: "webp"}, `invalid setting IMAGE_PROXY_WARM_SIZES="0": must be whole numbers from 1 to 4000 (IMAGE_PROXY_MAX_SIZE)`},
		{Config{Sizes: "360,,720", Formats: "webp"}, `invalid setting IMAGE_PROXY_WARM_SIZES="360,,720": must be whole numbers`},
		{Config{Sizes: "360", Formats: "tiff", DPRs: "1"}, `invalid setting IMAGE_PROXY_WARM_FORMATS="tiff": must be output formats separated by commas, from `},
		{Config{Sizes: "360", Formats: "auto"}, `invalid setting IMAGE_PROXY_WARM_FORMATS="auto": must be output formats`},
	} {
		err := c.cfg.Validate(4000, cache.Config{}, origin.S3Config{}, request.ControlsConfig{})
		var se *setting.Error
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %s…", c.cfg, err, c.want)
		}
	}
	spec := Config{Sizes: "720, 360", Formats: "webp,avif", DPRs: "1"}.Spec(4000, request.ControlsConfig{})
	if !slices.Equal(spec.Sizes, []int{360, 720}) || len(spec.Formats) != 2 || !slices.Equal(spec.DPRs, []float64{1}) || spec.Force {
		t.Errorf("Spec: %+v", spec)
	}
}

func TestCheckRoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.jpg")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckRoot(dir); err != nil {
		t.Errorf("a directory: %v", err)
	}
	for _, bad := range []string{file, filepath.Join(dir, "missing")} {
		err := CheckRoot(bad)
		if err == nil || err.Error() != "IMAGE_PROXY_ROOT_PATH="+bad+" is not a directory: warm reads the originals of the local root" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
