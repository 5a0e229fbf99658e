package main

// The Helm chart (deploy/helm/image-proxy) describes the settings in two
// generated files: values.schema.json's "settings" and "secrets" (what
// `helm install` accepts) and deploy/helm/settings.json (what the chart's
// own tests compare the rendered Deployment with). Both come from the env
// tags of settings{} through envFields, so neither can drift from the code:
// TestChartSchema fails until `make chart-schema` has rewritten them.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var updateChart = flag.Bool("update-chart", false, "rewrite the chart's generated settings files (make chart-schema)")

const (
	chartSchemaPath   = "deploy/helm/image-proxy/values.schema.json"
	chartSettingsPath = "deploy/helm/settings.json"
)

// chartManaged are the settings the chart derives from its own values (a
// port, a mount, the drain time), so they are not in the "settings" map:
// a second way to set them could only contradict the first.
var chartManaged = map[string]string{
	"IMAGE_PROXY_BIND_ADDRESS":      "containerPort",
	"IMAGE_PROXY_ROOT_PATH":         "originals.volume (mounted at /app/data)",
	"IMAGE_PROXY_ENABLE_DISK_CACHE": "cache.disk.enabled",
	"IMAGE_PROXY_CACHE_DISK_PATH":   "cache.disk (mounted at /app/cache)",
	"IMAGE_PROXY_CACHE_DISK_SIZE":   "cache.disk.sizeLimit or persistence.size (80 % of it)",
	"IMAGE_PROXY_STRIP_PATH":        "pathPrefix",
	"IMAGE_PROXY_SHUTDOWN_TIMEOUT":  "shutdown.timeoutSeconds",
}

// chartSecrets go into a Secret (generated, or the operator's
// existingSecret), never into the ConfigMap. The events and purge tokens
// are named before the code reads them (they are being added alongside);
// until then they are passed and ignored.
var chartSecrets = []string{
	"IMAGE_PROXY_S3_ACCESS_KEY", "IMAGE_PROXY_S3_SECRET_KEY",
	"IMAGE_PROXY_SIGNING_KEY", "IMAGE_PROXY_SIGNING_KEY_PREVIOUS",
	"IMAGE_PROXY_CONVERT_TOKEN", "IMAGE_PROXY_EVENTS_TOKEN", "IMAGE_PROXY_PURGE_TOKEN",
}

// durationPattern is what time.ParseDuration accepts, signless.
const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// chartSetting is one line of settings.json.
type chartSetting struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"` // JSON Schema type; durations are strings
	Default string   `json:"default"`
	Role    string   `json:"role"`           // settings, secret or chart
	From    string   `json:"from,omitempty"` // for role chart: the value it comes from
	Enum    []string `json:"enum,omitempty"` // the names a text-valued type accepts
}

func chartSettings() []chartSetting {
	var out []chartSetting
	for _, f := range envFields() {
		s := chartSetting{Name: f.name, Type: jsonType(f.typ), Default: f.def, Role: "settings", Enum: names(f.typ)}
		if from, ok := chartManaged[f.name]; ok {
			s.Role, s.From = "chart", from
		} else if slices.Contains(chartSecrets, f.name) {
			s.Role = "secret"
		}
		out = append(out, s)
	}
	return out
}

var textType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

func jsonType(t reflect.Type) string {
	switch {
	case reflect.PointerTo(t).Implements(textType):
		return "string" // parsed from its name (transform.Algorithm)
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	}
	return "string"
}

// names lists the names of a small integer type parsed from text: each
// value whose String() its UnmarshalText reads back to the same value.
func names(t reflect.Type) []string {
	_, stringer := reflect.New(t).Elem().Interface().(fmt.Stringer)
	if !reflect.PointerTo(t).Implements(textType) || !stringer || t.Kind() != reflect.Uint8 {
		return nil
	}
	var out []string
	for i := range 256 {
		v := reflect.New(t).Elem()
		v.SetUint(uint64(i))
		name := v.Interface().(fmt.Stringer).String()
		back := reflect.New(t)
		if back.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(name)) == nil && back.Elem().Uint() == uint64(i) {
			out = append(out, name)
		}
	}
	return out
}

// settingSchema is one property of "settings" or "secrets.values".
func settingSchema(s chartSetting, meaning map[string]string) map[string]any {
	p := map[string]any{"type": s.Type}
	if s.Type == "duration" {
		p["type"], p["pattern"] = "string", durationPattern
	}
	if s.Default != "" {
		switch s.Type {
		case "integer":
			n, _ := strconv.ParseInt(s.Default, 10, 64)
			p["default"] = n
		case "boolean":
			p["default"] = s.Default == "true"
		default:
			p["default"] = s.Default
		}
	}
	if len(s.Enum) > 0 {
		p["enum"] = s.Enum
	}
	if m := meaning[s.Name]; m != "" {
		p["description"] = m
	}
	return p
}

// readmeMeanings reads the README's settings table: variable → meaning.
func readmeMeanings(t *testing.T) map[string]string {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| .*? \\| (.*) \\|$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// generatedSchema is the committed schema with its generated parts
// replaced; everything else in it is the chart's own, edited by hand.
func generatedSchema(t *testing.T) []byte {
	raw, err := os.ReadFile(chartSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("%s: %v", chartSchemaPath, err)
	}
	meaning := readmeMeanings(t)
	plain, secret := map[string]any{}, map[string]any{}
	for _, s := range chartSettings() {
		switch s.Role {
		case "settings":
			plain[s.Name] = settingSchema(s, meaning)
		case "secret":
			secret[s.Name] = settingSchema(s, meaning)
		}
	}
	props := schema["properties"].(map[string]any)
	props["settings"] = map[string]any{
		"type":        "object",
		"description": "image-proxy's settings (README, Settings), passed through a ConfigMap. Generated from the code's env tags by `make chart-schema`. Secrets go in secrets.values; the settings the chart derives are not here: " + managedList() + ". OTEL_* variables configure tracing.",
		"properties":  plain,
		"patternProperties": map[string]any{
			"^OTEL_[A-Z_]+$": map[string]any{"type": "string"},
		},
		"additionalProperties": false,
	}
	secrets := props["secrets"].(map[string]any)["properties"].(map[string]any)
	secrets["values"] = map[string]any{
		"type":                 "object",
		"description":          "Secret settings, put in a Secret the chart generates (ignored with existingSecret). Generated by `make chart-schema`.",
		"properties":           secret,
		"additionalProperties": false,
	}
	return marshal(t, schema)
}

func managedList() string {
	var names []string
	for n, from := range chartManaged {
		names = append(names, n+" ("+from+")")
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func marshal(t *testing.T, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestChartSchema: the chart's schema and settings list are what the code's
// settings generate (run `make chart-schema` after changing a setting).
func TestChartSchema(t *testing.T) {
	for _, f := range []struct {
		path string
		want []byte
	}{
		{chartSchemaPath, generatedSchema(t)},
		{chartSettingsPath, marshal(t, map[string]any{"settings": chartSettings()})},
	} {
		if *updateChart {
			if err := os.WriteFile(f.path, f.want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s is not what the settings generate: run `make chart-schema` and commit it", f.path)
		}
	}
}

// TestChartSettingRoles: every secret-looking setting is one of the
// chart's secrets, and every name the chart handles exists.
func TestChartSettingRoles(t *testing.T) {
	known := settingNames()
	for _, n := range known {
		if regexp.MustCompile(`_(KEY|TOKEN|SECRET|PASSWORD)(_|$)`).MatchString(n) && !slices.Contains(chartSecrets, n) {
			t.Errorf("%s looks secret: add it to chartSecrets so the chart puts it in a Secret", n)
		}
	}
	for n := range chartManaged {
		if !slices.Contains(known, n) {
			t.Errorf("chartManaged names %s, which is no setting", n)
		}
	}
	for _, n := range chartSecrets {
		if !slices.Contains(known, n) {
			t.Errorf("chartSecrets names %s, which is no setting", n)
		}
	}
	if m := readmeMeanings(t); len(m) < len(known) {
		t.Errorf("README settings table: %d rows read, want at least %d", len(m), len(known))
	}
}
