package deploy

import (
	"cmp"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mount is one entry of a service's volumes, short or long syntax.
type mount struct {
	source, target string
	readOnly       bool
}

// bind reports whether the source is a path on the host (not a named volume).
func (m mount) bind() bool {
	return strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~")
}

type service struct {
	name        string
	raw         map[string]any
	mounts      []mount
	environment map[string]string
	labels      map[string]string
}

type compose struct {
	services map[string]*service
	volumes  map[string]any
	top      map[string]any
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// keyValues reads compose's two spellings of a mapping: a map, or a list of
// "KEY=VALUE" strings.
func keyValues(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			out[k] = str(val)
		}
	case []any:
		for _, e := range x {
			k, val, _ := strings.Cut(str(e), "=")
			out[k] = val
		}
	}
	return out
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var top map[string]any
	readYAML(t, filepath.Join(repo, "compose.yaml"), &top)
	c := compose{services: map[string]*service{}, top: top}
	c.volumes, _ = top["volumes"].(map[string]any)
	services, _ := top["services"].(map[string]any)
	for name, raw := range services {
		m, _ := raw.(map[string]any)
		s := &service{name: name, raw: m, environment: keyValues(m["environment"]), labels: keyValues(m["labels"])}
		vols, _ := m["volumes"].([]any)
		for _, v := range vols {
			switch x := v.(type) {
			case string:
				parts := strings.Split(x, ":")
				mt := mount{source: parts[0]}
				if len(parts) > 1 {
					mt.target = parts[1]
				}
				mt.readOnly = len(parts) > 2 && strings.Contains(parts[2], "ro")
				s.mounts = append(s.mounts, mt)
			case map[string]any:
				ro, _ := x["read_only"].(bool)
				s.mounts = append(s.mounts, mount{source: str(x["source"]), target: str(x["target"]), readOnly: ro})
			default:
				t.Errorf("%s: volume entry %v is neither short nor long syntax", name, v)
			}
		}
		c.services[name] = s
	}
	return c
}

func (c compose) service(t *testing.T, name string) *service {
	t.Helper()
	s, ok := c.services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q", name)
	}
	return s
}

// mountAt returns the mount whose container path is target.
func (s *service) mountAt(target string) (mount, bool) {
	for _, m := range s.mounts {
		if path.Clean(m.target) == path.Clean(target) {
			return m, true
		}
	}
	return mount{}, false
}

// Every file or directory compose.yaml takes from the repository exists.
func TestComposeReferencesExist(t *testing.T) {
	c := loadCompose(t)
	checked := 0
	need := func(what, rel string) {
		t.Helper()
		checked++
		if !exists(rel) {
			t.Errorf("%s: %s does not exist in the repository", what, rel)
		}
	}
	for name, s := range c.services {
		switch b := s.raw["build"].(type) {
		case nil:
		case string:
			need(name+" build context", b)
			need(name+" Dockerfile", filepath.Join(b, "Dockerfile"))
		case map[string]any:
			ctx := str(b["context"])
			if ctx == "" {
				ctx = "."
			}
			df := str(b["dockerfile"])
			if df == "" {
				df = "Dockerfile"
			}
			need(name+" build context", ctx)
			need(name+" dockerfile", filepath.Join(ctx, df))
		}
		for _, m := range s.mounts {
			switch {
			case strings.HasPrefix(m.source, "."):
				need(name+" volume", m.source)
			case m.bind():
				// the machine's paths (the Docker socket), not ours
			default:
				if _, ok := c.volumes[m.source]; !ok {
					t.Errorf("%s: named volume %q is not declared under volumes:", name, m.source)
				}
			}
		}
		// env_file: a string, a list of strings, or a list of {path, required}.
		var envFiles []any
		switch e := s.raw["env_file"].(type) {
		case string:
			envFiles = []any{e}
		case []any:
			envFiles = e
		}
		for _, e := range envFiles {
			switch x := e.(type) {
			case string:
				need(name+" env_file", x)
			case map[string]any:
				if req, ok := x["required"].(bool); !ok || req {
					need(name+" env_file", str(x["path"]))
				}
			}
		}
	}
	for _, kind := range []string{"configs", "secrets"} {
		defs, _ := c.top[kind].(map[string]any)
		for name, d := range defs {
			if m, ok := d.(map[string]any); ok && m["file"] != nil {
				need(kind+" "+name, str(m["file"]))
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d references checked: did the parser miss some?", checked)
	}
}

// The pieces agree with each other: what the Dockerfile sets, what compose
// mounts, what Traefik strips, what Prometheus scrapes and loads.
func TestComposeWiring(t *testing.T) {
	c := loadCompose(t)
	df := parseDockerfile(t)
	ip := c.service(t, "image-proxy")

	// Images come from the read-only root the image is configured for.
	root := df.env["IMAGE_PROXY_ROOT_PATH"]
	if m, ok := ip.mountAt(root); !ok || m.source != "./data/images" || !m.readOnly {
		t.Errorf("image-proxy: want ./data/images mounted read-only at IMAGE_PROXY_ROOT_PATH (%s), got %+v", root, ip.mounts)
	}
	// The disk tier is on, on a named volume at its path.
	if ip.environment["IMAGE_PROXY_ENABLE_DISK_CACHE"] != "true" {
		t.Error("image-proxy: IMAGE_PROXY_ENABLE_DISK_CACHE must be true")
	}
	cacheDir := ip.environment["IMAGE_PROXY_CACHE_DISK_PATH"]
	if cacheDir == "" {
		cacheDir = df.env["IMAGE_PROXY_CACHE_DISK_PATH"]
	}
	if m, ok := ip.mountAt(cacheDir); !ok || m.bind() {
		t.Errorf("image-proxy: want a named volume at IMAGE_PROXY_CACHE_DISK_PATH (%s), got %+v", cacheDir, ip.mounts)
	}
	// Drain time fits in the stop grace period.
	if g, err := time.ParseDuration(str(ip.raw["stop_grace_period"])); err != nil || g <= 30*time.Second {
		t.Errorf("image-proxy: stop_grace_period %q must exceed IMAGE_PROXY_SHUTDOWN_TIMEOUT (30s)", str(ip.raw["stop_grace_period"]))
	}

	// Traefik routes a prefix and strips exactly that prefix; image-proxy
	// then must not strip it again (one story: Traefik strips).
	rule := ip.labels["traefik.http.routers.image-proxy.rule"]
	prefix := regexp.MustCompile("^PathPrefix\\(`([^`]+)`\\)$").FindStringSubmatch(rule)
	if prefix == nil {
		t.Fatalf("traefik router rule %q is not PathPrefix(`...`)", rule)
	}
	mw := ip.labels["traefik.http.routers.image-proxy.middlewares"]
	if strip := ip.labels["traefik.http.middlewares."+mw+".stripprefix.prefixes"]; mw == "" || strip != prefix[1] {
		t.Errorf("router prefix %q but its middleware %q strips %q", prefix[1], mw, strip)
	}
	if sp, ok := ip.environment["IMAGE_PROXY_STRIP_PATH"]; ok {
		t.Errorf("Traefik strips %s already; IMAGE_PROXY_STRIP_PATH=%q would be a second story", prefix[1], sp)
	}
	port := df.exposed
	if p := ip.labels["traefik.http.services.image-proxy.loadbalancer.server.port"]; p != port {
		t.Errorf("traefik forwards to port %s, the image listens on %s", p, port)
	}
	if hc := ip.labels["traefik.http.services.image-proxy.loadbalancer.healthcheck.path"]; hc != "" && hc != "/health" {
		t.Errorf("traefik health check path %s, want /health", hc)
	}

	// Prometheus: the config is mounted with its rule files beside it, and it
	// scrapes a service that exists, on the port the image listens on.
	prom := c.service(t, "prometheus")
	cfgTarget := ""
	for _, arg := range anyStrings(prom.raw["command"]) {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			cfgTarget = v
		}
	}
	if cfgTarget == "" {
		cfgTarget = "/etc/prometheus/prometheus.yml" // the image's default
	}
	if m, ok := prom.mountAt(cfgTarget); !ok || m.source != "./deploy/prometheus.yml" {
		t.Fatalf("prometheus: ./deploy/prometheus.yml is not mounted at %s", cfgTarget)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &cfg)
	for _, rf := range cfg.RuleFiles {
		inContainer := path.Join(path.Dir(cfgTarget), rf)
		m, ok := prom.mountAt(inContainer)
		if !ok {
			t.Errorf("prometheus: rule file %s resolves to %s in the container, where nothing is mounted", rf, inContainer)
			continue
		}
		if inRepo := filepath.Join("deploy", rf); path.Clean(m.source) != "./"+filepath.ToSlash(inRepo) && path.Clean(m.source) != filepath.ToSlash(inRepo) {
			t.Errorf("prometheus: %s comes from %s in compose but from %s for promtool in the repository", inContainer, m.source, inRepo)
		}
	}
	scraped := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, p, _ := strings.Cut(target, ":")
				if host == "image-proxy" {
					scraped = true
					if p != port {
						t.Errorf("prometheus scrapes %s, the image listens on %s", target, port)
					}
				}
			}
		}
	}
	if !scraped {
		t.Error("prometheus.yml does not scrape the image-proxy service")
	}

	// Grafana: the provider's folder holds the mounted dashboard.
	if g, ok := c.services["grafana"]; ok {
		var prov struct {
			Providers []struct {
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, "grafana/dashboards.yml", &prov)
		found := false
		for _, m := range g.mounts {
			if m.source == "./deploy/grafana/image-proxy.json" {
				for _, p := range prov.Providers {
					if path.Dir(m.target) == path.Clean(p.Options.Path) {
						found = true
					}
				}
			}
		}
		if !found {
			t.Error("grafana: image-proxy.json is not mounted in the folder dashboards.yml provisions from")
		}
	}
}

func anyStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = strings.Fields(x)
	case []any:
		for _, e := range x {
			out = append(out, str(e))
		}
	}
	return out
}

// Debian 12's docker-compose 1.29 rejects the whole file over env_file's
// long form ({path, required}, Compose 2.24+), and `env_file: .env` fails
// when .env is missing; so settings reach the container by interpolation,
// in forms every Compose version knows, and the README says so.
func TestComposeWorksWithOldCompose(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.services {
		if ef, ok := s.raw["env_file"]; ok {
			t.Errorf("%s: env_file %v: the long form needs Compose 2.24+, the short one fails without .env", name, ef)
		}
	}
	// ${VAR}, ${VAR-x}, ${VAR:-x}, ${VAR?x}, ${VAR:?x}: all docker-compose
	// 1.x knows (no nesting, no ${VAR:+x}).
	ok := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^${}]*)?$`)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(x, -1) {
				if !ok.MatchString(m[1]) {
					t.Errorf("interpolation ${%s} is not a form docker-compose 1.29 reads", m[1])
				}
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(c.top)

	readme := string(read(t, filepath.Join(repo, "README.md")))
	for _, want := range []string{"docker-compose 1.29", "env_file", "`${VAR-default}`", "`environment:`"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not explain how compose passes .env (%q missing)", want)
		}
	}
}

// Every setting reaches the container from .env or the shell, at the
// template's default when neither sets it, except those this deployment
// fixes: a .env written for `make run` (root ./data/images) must not break
// the container.
func TestComposePassesSettings(t *testing.T) {
	ip := loadCompose(t).service(t, "image-proxy")
	df := parseDockerfile(t)
	fixed := map[string]string{
		"IMAGE_PROXY_STRIP_PATH":             "Traefik strips the prefix",
		"IMAGE_PROXY_ENABLE_DISK_CACHE":      "the cache volume is the point",
		"IMAGE_PROXY_CACHE_DISK_PATH":        "where the volume is mounted",
		"IMAGE_PROXY_LOG_FORMAT":             "json for log shippers",
		"IMAGE_PROXY_S3_ENDPOINT":            "this deployment's MinIO",
		"IMAGE_PROXY_S3_BUCKET":              "created by minio-init",
		"IMAGE_PROXY_S3_ACCESS_KEY":          "this deployment's MinIO",
		"IMAGE_PROXY_S3_SECRET_KEY":          "this deployment's MinIO",
		"IMAGE_PROXY_S3_PREFIX":              "where minio-init uploads",
		"IMAGE_PROXY_S3_RESULT_PREFIX":       "the replicas share results",
		"IMAGE_PROXY_EVENTS_TOKEN":           "MinIO's webhook sends this deployment's token",
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "this deployment's Jaeger",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "the port of that endpoint",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "the endpoint above is used",
	}
	// Empty, not the template's "info": IMAGE_PROXY_LOG_LEVEL set at all
	// would hide RUST_LOG.
	defaults := map[string]string{"IMAGE_PROXY_LOG_LEVEL": "", "RUST_LOG": ""}
	settings := append(templateSettings(t), setting{"RUST_LOG", ""})
	for _, s := range settings {
		v, passed := ip.environment[s.name]
		_, inImage := df.env[s.name]
		_, isFixed := fixed[s.name]
		switch {
		case inImage || isFixed:
			if strings.Contains(v, "${") {
				t.Errorf("%s=%q comes from .env, but the container fixes it (%s)", s.name, v, cmp.Or(fixed[s.name], "the image's ENV"))
			}
		case !passed:
			t.Errorf("%s is not passed to the container: add %s: \"${%s-%s}\"", s.name, s.name, s.name, s.value)
		default:
			def, ok := defaults[s.name]
			if !ok {
				def = s.value
			}
			// "-", not ":-": an empty Cache-Control setting means no header.
			if want := "${" + s.name + "-" + def + "}"; v != want {
				t.Errorf("%s: %q, want %q", s.name, v, want)
			}
		}
	}
	for name, v := range ip.environment {
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.name == name }) {
			t.Errorf("compose sets %s=%q, which is not a setting of .env.template", name, v)
		}
	}
}

// The router labels are tested on Traefik v3.6; an older v3 pin gives up
// fixes for nothing.
func TestComposeTraefikVersion(t *testing.T) {
	img := str(loadCompose(t).service(t, "traefik").raw["image"])
	m := regexp.MustCompile(`^traefik:v3\.(\d+)(?:\.\d+)?$`).FindStringSubmatch(img)
	if m == nil {
		t.Fatalf("traefik image %q: want a pinned v3 release, traefik:v3.N", img)
	}
	if minor, _ := strconv.Atoi(m[1]); minor < 6 {
		t.Errorf("traefik image %q: want v3.6 or later, the release the router labels are tested on", img)
	}
}
