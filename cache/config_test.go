package cache

import (
	"errors"
	"slices"
	"testing"

	caarlos0 "github.com/caarlos0/env/v11"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := caarlos0.ParseWithOptions(&c, caarlos0.Options{Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	want := Config{Enabled: true, MemorySize: 100 << 20, MaxItemSize: 1 << 20, DiskSize: 512 << 20, DiskPath: "./cache"}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 10, DiskSize: 1 << 30, DiskPath: "/var/cache"}
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"memory zero":      {func(c *Config) { c.MemorySize = 0 }, `invalid setting IMAGE_PROXY_CACHE_MEMORY_SIZE="0": must be from 1 to 1099511627776`},
		"memory too big":   {func(c *Config) { c.MemorySize = 1<<40 + 1 }, `invalid setting IMAGE_PROXY_CACHE_MEMORY_SIZE="1099511627777": must be from 1 to 1099511627776`},
		"item negative":    {func(c *Config) { c.MaxItemSize = -3 }, `invalid setting IMAGE_PROXY_CACHE_MAX_ITEM_SIZE="-3": must be from 1 to 1099511627776`},
		"disk zero":        {func(c *Config) { c.DiskSize = 0 }, `invalid setting IMAGE_PROXY_CACHE_DISK_SIZE="0": must be from 1 to 1125899906842624`},
		"disk without dir": {func(c *Config) { c.DiskEnabled, c.DiskPath = true, "" }, `invalid setting IMAGE_PROXY_CACHE_DISK_PATH="": must be a directory path`},
		// Checked even while off, so switching a tier on cannot reveal a typo.
		"disabled, bad size": {func(c *Config) { c.Enabled, c.MemorySize = false, 0 }, `invalid setting IMAGE_PROXY_CACHE_MEMORY_SIZE="0": must be from 1 to 1099511627776`},
		"disk off, no dir":   {func(c *Config) { c.DiskPath = "" }, ""},
		"largest":            {func(c *Config) { c.MemorySize, c.MaxItemSize, c.DiskSize = 1<<40, 1<<40, 1<<50 }, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *SettingError
			if !errors.As(err, &se) || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestLocalTiers(t *testing.T) {
	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{Enabled: false, DiskEnabled: true}, nil},
		{Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 10}, []string{"memory"}},
		{Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 10, DiskEnabled: true, DiskSize: 1 << 20, DiskPath: t.TempDir()}, []string{"memory", "disk"}},
	}
	for _, c := range cases {
		tiers, err := LocalTiers(c.cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tier := range tiers {
			names = append(names, tier.Name())
			defer tier.Close()
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("%+v: tiers %v, want %v", c.cfg, names, c.want)
		}
	}
}
