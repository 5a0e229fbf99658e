package deploy

import (
	"bufio"
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

type setting struct{ name, value string }

var templateLine = regexp.MustCompile(`^# ((?:IMAGE_PROXY_[A-Z0-9_]+|OTEL_[A-Z0-9_]+|RUST_LOG))=(.*)$`)

// templateSettings lists the settings .env.template shows, commented out,
// with the values it shows.
func templateSettings(t *testing.T) []setting {
	t.Helper()
	var out []setting
	sc := bufio.NewScanner(bytes.NewReader(read(t, filepath.Join(repo, ".env.template"))))
	for sc.Scan() {
		if m := templateLine.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, setting{m[1], m[2]})
		}
	}
	if len(out) < 30 {
		t.Fatalf(".env.template shows only %d settings as `# NAME=default`", len(out))
	}
	return out
}

// readmeSettings reads the README's settings table: each variable and the
// default its second column gives (the first `code` in it; none, as in
// "unset" or "number of CPUs", is the empty value).
func readmeSettings(t *testing.T) []setting {
	t.Helper()
	readme := string(read(t, filepath.Join(repo, "README.md")))
	_, section, ok := strings.Cut(readme, "\n## Settings\n")
	if !ok {
		t.Fatal("README has no ## Settings section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `((?:IMAGE_PROXY_|OTEL_)[A-Z0-9_]+)` \\| ([^|]*) \\|")
	code := regexp.MustCompile("`([^`]*)`")
	var out []setting
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		def := ""
		if c := code.FindStringSubmatch(m[2]); c != nil {
			def = c[1]
		}
		out = append(out, setting{m[1], def})
	}
	if len(out) < 30 {
		t.Fatalf("README settings table has only %d rows", len(out))
	}
	return out
}

// Copying the template to .env must change nothing: a value set there
// silently beats defaults that are not the template's to decide (the
// Docker image's root, RUST_LOG when IMAGE_PROXY_LOG_LEVEL is set).
func TestEnvTemplateSetsNothing(t *testing.T) {
	path := filepath.Join(repo, ".env.template")
	// The parser image-proxy itself reads .env with.
	vars, err := godotenv.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		t.Errorf(".env.template sets %s=%q: comment it out (# %s=...)", k, v, k)
	}
	// Compose and `docker run --env-file` have parsers of their own: every
	// line is a comment or blank.
	sc := bufio.NewScanner(bytes.NewReader(read(t, path)))
	for n := 1; sc.Scan(); n++ {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			t.Errorf(".env.template:%d is not a comment: %q", n, line)
		}
	}
}

// The template shows every documented setting at the default the README
// gives, and nothing the README does not document.
func TestEnvTemplateMatchesReadme(t *testing.T) {
	tmpl := map[string]string{}
	for _, s := range templateSettings(t) {
		if _, dup := tmpl[s.name]; dup {
			t.Errorf(".env.template shows %s twice", s.name)
		}
		tmpl[s.name] = s.value
	}
	documented := map[string]bool{}
	for _, s := range readmeSettings(t) {
		documented[s.name] = true
		v, ok := tmpl[s.name]
		switch {
		case !ok:
			t.Errorf(".env.template lacks %s (want a line `# %s=%s`)", s.name, s.name, s.value)
		case v != s.value:
			t.Errorf(".env.template shows %s=%q, the README's default is %q", s.name, v, s.value)
		}
	}
	for name := range tmpl {
		if !documented[name] && name != "RUST_LOG" {
			t.Errorf(".env.template shows %s, which the README's settings table does not document", name)
		}
	}
}
