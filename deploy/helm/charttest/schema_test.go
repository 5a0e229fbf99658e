package charttest

import (
	"strings"
	"testing"

	"image-proxy/deploy/helm/charttest/render"
)

// TestSchemaRejects: values.schema.json refuses wrong types and unknown
// keys with a message naming the key, before anything is rendered.
func TestSchemaRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		set  string
		want []string // all in helm's error
	}{
		{"unknown top-level key", "replicas=3", []string{"replicas", "additional properties"}},
		{"replicaCount not a number", "replicaCount=three", []string{"replicaCount", "integer"}},
		{"unknown setting", "settings.IMAGE_PROXY_NO_SUCH=1", []string{"IMAGE_PROXY_NO_SUCH", "additional properties"}},
		{"typo in a setting", "settings.IMAGE_PROXY_JPEG_QUALTY=80", []string{"IMAGE_PROXY_JPEG_QUALTY"}},
		{"integer setting as text", "settings.IMAGE_PROXY_JPEG_QUALITY=high", []string{"IMAGE_PROXY_JPEG_QUALITY", "integer"}},
		{"boolean setting as text", "settings.IMAGE_PROXY_ALLOW_QUALITY=yes", []string{"IMAGE_PROXY_ALLOW_QUALITY", "boolean"}},
		{"algorithm not one of the names", "settings.IMAGE_PROXY_RESIZE_ALGORITHM=bicubic", []string{"IMAGE_PROXY_RESIZE_ALGORITHM", "lanczos3"}},
		{"duration without unit", "settings.IMAGE_PROXY_QUEUE_TIMEOUT=10", []string{"IMAGE_PROXY_QUEUE_TIMEOUT"}},
		{"duration garbage", "settings.IMAGE_PROXY_QUEUE_TIMEOUT=soon", []string{"IMAGE_PROXY_QUEUE_TIMEOUT"}},
		{"secret as a plain setting", "settings.IMAGE_PROXY_S3_SECRET_KEY=x", []string{"IMAGE_PROXY_S3_SECRET_KEY", "additional properties"}},
		{"chart-derived setting", "settings.IMAGE_PROXY_BIND_ADDRESS=0.0.0.0:9000", []string{"IMAGE_PROXY_BIND_ADDRESS", "additional properties"}},
		{"unknown secret", "secrets.values.IMAGE_PROXY_JPEG_QUALITY=80", []string{"IMAGE_PROXY_JPEG_QUALITY", "additional properties"}},
		{"sizeLimit not a quantity", "cache.disk.sizeLimit=lots", []string{"sizeLimit"}},
		{"sizeLimit in decimal units", "cache.disk.sizeLimit=2G", []string{"sizeLimit"}},
		{"anti-affinity mode", "podAntiAffinity=always", []string{"podAntiAffinity"}},
		{"shutdown as a duration", "shutdown.timeoutSeconds=30s", []string{"timeoutSeconds", "integer"}},
		{"containerPort out of range", "containerPort=70000", []string{"containerPort"}},
		{"pull policy", "image.pullPolicy=Sometimes", []string{"pullPolicy"}},
		{"typo in a nested key", "autoscaling.targetCPU=50", []string{"targetCPU", "additional properties"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render.Template(nil, c.set)
			if err == nil {
				t.Fatalf("--set %s rendered", c.set)
			}
			msg := err.Error()
			if !strings.Contains(msg, "values don't meet the specifications of the schema") {
				t.Errorf("--set %s failed, but not on the schema: %s", c.set, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("--set %s: error does not say %q: %s", c.set, w, msg)
				}
			}
		})
	}
}

// TestChartRefusesImpossibleDisk: one created ReadWriteOnce claim cannot
// serve several replicas; the chart says so instead of rendering pods that
// would wait for the volume forever.
func TestChartRefusesImpossibleDisk(t *testing.T) {
	_, err := render.Template([]string{"testdata/pvc.yaml"}, "replicaCount=2")
	if err == nil || !strings.Contains(err.Error(), "ReadWriteOnce claim serves one replica") {
		t.Errorf("two replicas on one created ReadWriteOnce claim: %v", err)
	}
}
