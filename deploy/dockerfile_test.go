package deploy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

type instruction struct {
	cmd, args string
	stage     int
}

type dockerfile struct {
	instructions []instruction
	from         []string          // image of each stage
	env          map[string]string // final stage
	exposed      string
}

// parseDockerfile reads the Dockerfile enough for these checks: comment
// lines dropped, continuation lines joined, instructions split by stage.
func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	df := dockerfile{env: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(read(t, filepath.Join(repo, "Dockerfile"))))
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			img, _, _ := strings.Cut(args, " ")
			df.from = append(df.from, img)
		}
		ins := instruction{cmd: cmd, args: args, stage: len(df.from) - 1}
		df.instructions = append(df.instructions, ins)
		last := ins.stage == 1 // the runtime stage
		switch {
		case cmd == "ENV" && last:
			fields := strings.Fields(args)
			if len(fields) == 2 && !strings.Contains(fields[0], "=") {
				df.env[fields[0]] = fields[1]
				break
			}
			for _, f := range fields {
				k, v, _ := strings.Cut(f, "=")
				df.env[k] = strings.Trim(v, `"`)
			}
		case cmd == "EXPOSE" && last:
			df.exposed = strings.TrimSuffix(args, "/tcp")
		}
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if len(df.from) != 2 {
		t.Fatalf("Dockerfile: want 2 stages (build, runtime), got %v", df.from)
	}
	return df
}

func (df dockerfile) find(stage int, cmd string) []string {
	var out []string
	for _, in := range df.instructions {
		if in.stage == stage && in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

var aptInstall = regexp.MustCompile(`apt-get install\s+((?:-\S+\s+)*)([^&;|]+)`)

// aptPackages lists what a stage's RUN lines install with apt-get.
func (df dockerfile) aptPackages(stage int) []string {
	var pkgs []string
	for _, run := range df.find(stage, "RUN") {
		for _, m := range aptInstall.FindAllStringSubmatch(run, -1) {
			for _, p := range strings.Fields(m[2]) {
				if !strings.HasPrefix(p, "-") {
					pkgs = append(pkgs, p)
				}
			}
		}
	}
	return pkgs
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)

	// Same Debian release in both stages (the bindings are for bookworm's
	// libvips 8.14), and the Go release go.mod asks for.
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(read(t, filepath.Join(repo, "go.mod")))
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "golang:" + string(goVersion[1]) + "-bookworm"; !strings.HasPrefix(df.from[0], want) {
		t.Errorf("build stage FROM %s, want %s", df.from[0], want)
	}
	// The runtime stage is nothing but the tree collect-rootfs.sh builds in
	// the Debian 12 build stage: the libraries it carries are bookworm's.
	if df.from[1] != "scratch" {
		t.Errorf("runtime stage FROM %s, want scratch (plus the build stage's /rootfs)", df.from[1])
	}
	if copies := df.find(1, "COPY"); !slices.Contains(copies, "--from=build /rootfs/ /") {
		t.Errorf("runtime stage COPY %v: want --from=build /rootfs/ /", copies)
	}
	if runs := strings.Join(df.find(0, "RUN"), "\n"); !strings.Contains(runs, "deploy/image/collect-rootfs.sh /rootfs /out/image-proxy") {
		t.Error("build stage does not run deploy/image/collect-rootfs.sh /rootfs /out/image-proxy")
	}
	if runs := df.find(1, "RUN"); len(runs) > 0 {
		t.Errorf("runtime stage RUN %v: the image has no shell tools to run them (and needs none)", runs)
	}

	// Build stage: what the Makefile installs to build (gcc and
	// ca-certificates ship with the golang image).
	build := df.aptPackages(0)
	mk := regexp.MustCompile(`(?m)^RUN_PACKAGES\s*:=\s*(.+)$`).FindSubmatch(read(t, filepath.Join(repo, "Makefile")))
	if mk == nil {
		t.Fatal("Makefile: no RUN_PACKAGES line to compare with")
	}
	for _, p := range strings.Fields(string(mk[1])) {
		if p != "gcc" && p != "ca-certificates" && !slices.Contains(build, p) {
			t.Errorf("Makefile builds with %s, the Dockerfile's build stage does not install it (has %v)", p, build)
		}
	}
	runs := strings.Join(df.find(0, "RUN"), "\n")
	for _, flag := range []string{"go build", "-trimpath", "-s -w", "-X main.version=", "CGO_ENABLED=1"} {
		if !strings.Contains(runs, flag) {
			t.Errorf("build stage: %q missing from the go build line", flag)
		}
	}

	users := df.find(1, "USER")
	if len(users) == 0 {
		t.Error("runtime stage runs as root: add a USER")
	} else if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("runtime USER %s is root", users[len(users)-1])
	}

	for k, want := range map[string]string{
		"IMAGE_PROXY_ROOT_PATH":       "/app/data",
		"IMAGE_PROXY_CACHE_DISK_PATH": "/app/cache",
	} {
		if df.env[k] != want {
			t.Errorf("ENV %s=%q, want %q", k, df.env[k], want)
		}
	}
	if df.exposed != "8000" {
		t.Errorf("EXPOSE %q, want 8000", df.exposed)
	}
	if _, p, _ := strings.Cut(df.env["IMAGE_PROXY_BIND_ADDRESS"], ":"); p != df.exposed {
		t.Errorf("IMAGE_PROXY_BIND_ADDRESS=%q does not listen on the exposed port %s", df.env["IMAGE_PROXY_BIND_ADDRESS"], df.exposed)
	}

	// Exactly one allocator setting, and its library installed.
	_, arena := df.env["MALLOC_ARENA_MAX"]
	preload, jemalloc := df.env["LD_PRELOAD"]
	switch {
	case arena && jemalloc:
		t.Error("both MALLOC_ARENA_MAX and LD_PRELOAD set: pick one allocator setting")
	case !arena && !jemalloc:
		t.Error("no allocator setting: set MALLOC_ARENA_MAX=2 or preload jemalloc")
	case jemalloc:
		if !regexp.MustCompile(`^/usr/lib/[a-z0-9_]+-linux-gnu/libjemalloc\.so\.2$`).MatchString(preload) {
			t.Errorf("LD_PRELOAD=%s is not where Debian's libjemalloc2 puts the library", preload)
		}
		if !slices.Contains(df.aptPackages(0), "libjemalloc2") {
			t.Error("LD_PRELOAD names jemalloc but the build stage does not install libjemalloc2 (collect-rootfs.sh carries it over)")
		}
	}

	// HEALTHCHECK runs the script COPY'd from deploy/healthcheck.sh.
	hc := df.find(1, "HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("want one HEALTHCHECK in the runtime stage, got %d", len(hc))
	}
	m := regexp.MustCompile(`CMD \["([^"]+)"`).FindStringSubmatch(hc[0])
	if m == nil {
		t.Fatalf("HEALTHCHECK %q: want the exec form CMD [\"...\"]", hc[0])
	}
	// collect-rootfs.sh installs deploy/healthcheck.sh there, executable
	// whatever the checkout's file mode (COPY --chmod needs BuildKit).
	collect := string(read(t, filepath.Join(repo, "deploy", "image", "collect-rootfs.sh")))
	if !strings.Contains(collect, `put "$here/../healthcheck.sh" `+m[1]) || !strings.Contains(collect, "chmod 0755 \"$rootfs"+m[1]+"\"") {
		t.Errorf("HEALTHCHECK runs %s, which collect-rootfs.sh does not install (executable) from deploy/healthcheck.sh", m[1])
	}
	// Kubernetes' runAsNonRoot can only check a numeric user.
	if len(users) > 0 && !regexp.MustCompile(`^[1-9][0-9]*:[0-9]+$`).MatchString(users[len(users)-1]) {
		t.Errorf("USER %s: want numeric uid:gid", users[len(users)-1])
	}
}

// Debian 12's Docker 20.10 builds with the legacy builder unless
// DOCKER_BUILDKIT=1, and a "# syntax=" directive makes BuildKit pull a
// frontend image from a registry (air-gapped builds fail): the Dockerfile
// keeps to what both builders do with no registry beyond its base images.
func TestDockerfileNeedsNoBuildKit(t *testing.T) {
	raw := string(read(t, filepath.Join(repo, "Dockerfile")))
	// Parser directives are comment lines of the form "# key=value" at the
	// very top; any comment line of that form is one too many.
	if m := regexp.MustCompile(`(?mi)^#\s*syntax\s*=.*$`).FindString(raw); m != "" {
		t.Errorf("Dockerfile has a %q directive: BuildKit then fetches its frontend from a registry", m)
	}
	df := parseDockerfile(t)
	// Flags only BuildKit knows; the legacy builder rejects them.
	buildKitOnly := regexp.MustCompile(`(?:^|\s)--(mount|chmod|link|parents|exclude|checksum|keep-git-dir|network|security|start-interval)\b`)
	heredoc := regexp.MustCompile(`(?:^|[^<])<<-?\s*["']?[A-Za-z_]`)
	for _, in := range df.instructions {
		if m := buildKitOnly.FindStringSubmatch(in.args); m != nil {
			t.Errorf("%s --%s needs BuildKit: %s %s", in.cmd, m[1], in.cmd, in.args)
		}
		if (in.cmd == "RUN" || in.cmd == "COPY" || in.cmd == "ADD") && heredoc.MatchString(in.args) {
			t.Errorf("heredoc needs BuildKit: %s %s", in.cmd, in.args)
		}
	}
}

// `docker build --build-arg VERSION=...` reaches the binary; the README
// shows that form, since a plain `docker build` reports version "dev".
func TestDockerfileVersionArg(t *testing.T) {
	df := parseDockerfile(t)
	declared := false
	for _, in := range df.instructions {
		if in.stage != 0 {
			continue
		}
		switch {
		case in.cmd == "ARG" && regexp.MustCompile(`^VERSION(=|$)`).MatchString(in.args):
			declared = true
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			if !declared {
				t.Error("build stage: go build runs before ARG VERSION is declared")
			}
			if !regexp.MustCompile(`-X main\.version=\$\{?VERSION\}?`).MatchString(in.args) {
				t.Errorf("go build does not pass VERSION to -X main.version: %s", in.args)
			}
		}
	}
	if !declared {
		t.Error("build stage has no ARG VERSION")
	}
	readme := string(read(t, filepath.Join(repo, "README.md")))
	if !regexp.MustCompile(`(?m)^docker build .*--build-arg VERSION=\$\(git describe[^)]*\)`).MatchString(readme) {
		t.Error("README: show `docker build --build-arg VERSION=$(git describe --tags --always) ...`")
	}
}

// dockerignore matches like Docker's: patterns cleaned and rooted at the
// context, '!' re-includes, the last matching pattern wins, and a pattern
// that matches a directory excludes everything below it.
type dockerignore []string

func (d dockerignore) excluded(t *testing.T, rel string) bool {
	t.Helper()
	out := false
	for _, p := range d {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")), "/")
		if strings.Contains(p, "**") {
			t.Fatalf(".dockerignore pattern %q: this test's matcher does not know **; extend it", p)
		}
		for sub := rel; sub != "." && sub != "/"; sub = path.Dir(sub) {
			if ok, err := path.Match(p, sub); err != nil {
				t.Fatalf(".dockerignore pattern %q: %v", p, err)
			} else if ok {
				out = !neg
				break
			}
		}
	}
	return out
}

func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	var ign dockerignore
	for _, line := range strings.Split(string(read(t, filepath.Join(repo, ".dockerignore"))), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ign = append(ign, line)
		}
	}

	// Everything `go build .` compiles from this module.
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if not .Standard}}{{.Dir}}|{{join .GoFiles ","}},{{join .CgoFiles ","}},{{join .CFiles ","}},{{join .HFiles ","}},{{join .EmbedFiles ","}}{{end}}`, ".")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, files, _ := strings.Cut(line, "|")
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency from the module cache
		}
		for _, f := range strings.Split(files, ",") {
			if f != "" {
				need = append(need, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	// And every COPY source from the context.
	df := parseDockerfile(t)
	for _, in := range df.instructions {
		if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
			continue
		}
		f := strings.Fields(in.args)
		for _, src := range f[:len(f)-1] {
			if !strings.HasPrefix(src, "--") && src != "." {
				need = append(need, src)
			}
		}
	}
	// And the scripts the build stage runs.
	for _, run := range df.find(0, "RUN") {
		for _, m := range regexp.MustCompile(`bash (\S+\.sh)`).FindAllStringSubmatch(run, -1) {
			need = append(need, m[1])
		}
	}
	if len(need) < 20 {
		t.Fatalf("only %d build inputs found: %v", len(need), need)
	}
	for _, f := range need {
		if !exists(f) {
			t.Errorf("build input %s does not exist", f)
		}
		if ign.excluded(t, f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	// And it keeps out what must never be sent to the daemon.
	for _, f := range []string{".env", ".git/config", "image-proxy", "data/images/rocket.jpg", "cache/ab/cdef"} {
		if !ign.excluded(t, f) {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}

// The container health check, run for real against fake servers.
func TestHealthcheckScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is required (the runtime image has it)")
	}
	run := func(addr string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, "healthcheck.sh")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "IMAGE_PROXY_BIND_ADDRESS=" + addr}
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("healthcheck.sh hung against %s", addr)
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		return "0.0.0.0:" + port // as configured in the image: the script dials loopback
	}
	ok := `{"libvips":"8.14.1","status":"ok","uptime_seconds":3,"version":"dev"}`

	if code, out := run(serve(200, ok)); code != 0 {
		t.Errorf("healthy server: exit %d, %s", code, out)
	}
	for name, addr := range map[string]string{
		"503":           serve(503, ok),
		"wrong body":    serve(200, `{"status":"starting"}`),
		"not listening": closedPort(t),
	} {
		if code, out := run(addr); code == 0 {
			t.Errorf("%s: healthcheck passed", name)
		} else if !strings.HasPrefix(out, "unhealthy: ") {
			t.Errorf("%s: output %q, want one 'unhealthy: ...' line", name, out)
		}
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
