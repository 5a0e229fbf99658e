// Command docker-args prints, one per line, the `docker run` flags that
// run the image as the chart's Deployment (default values) runs it: its
// user, read-only root, dropped capabilities, no privilege escalation, an
// emptyDir as a tmpfs or (the disk tier) the named volume given, and its
// environment, ConfigMap included. deploy/image/check-image.sh uses it, so
// the check runs the container the chart promises, not a copy of it.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"image-proxy/deploy/helm/charttest/render"
)

func main() {
	cacheVolume := flag.String("cache-volume", "image-proxy-check-cache", "Docker volume for the disk tier's mount")
	flag.Parse()
	args, err := dockerArgs(*cacheVolume)
	if err != nil {
		fmt.Fprintln(os.Stderr, "docker-args:", err)
		os.Exit(1)
	}
	for _, a := range args {
		fmt.Println(a)
	}
}

func dockerArgs(cacheVolume string) ([]string, error) {
	out, err := render.Template(nil)
	if err != nil {
		return nil, err
	}
	docs, err := render.Split(out)
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	var cm corev1.ConfigMap
	for _, doc := range docs {
		switch doc.ID() {
		case "Deployment/" + render.Release:
			err = yaml.UnmarshalStrict(doc.Raw, &d)
		case "ConfigMap/" + render.Release:
			err = yaml.UnmarshalStrict(doc.Raw, &cm)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return nil, fmt.Errorf("no Deployment with one container rendered")
	}
	return containerArgs(d.Spec.Template.Spec, cm, cacheVolume)
}

func containerArgs(pod corev1.PodSpec, cm corev1.ConfigMap, cacheVolume string) ([]string, error) {
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil {
		return nil, fmt.Errorf("the container's securityContext names no user and group")
	}
	args := []string{fmt.Sprintf("--user=%d:%d", *sc.RunAsUser, *sc.RunAsGroup)}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt=no-new-privileges")
	}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Drop {
			args = append(args, "--cap-drop="+string(cp))
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		switch {
		case m.Name == "cache":
			args = append(args, fmt.Sprintf("--mount=type=volume,src=%s,dst=%s", cacheVolume, m.MountPath))
		case v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil:
			args = append(args, fmt.Sprintf("--tmpfs=%s:rw,size=%d,mode=1777", m.MountPath, v.EmptyDir.SizeLimit.Value()))
		default:
			return nil, fmt.Errorf("volume %s: no Docker equivalent in this check", m.Name)
		}
	}
	env := map[string]string{}
	for k, v := range cm.Data {
		env[k] = v
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	var names []string
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "--env="+k+"="+env[k])
	}
	return args, nil
}
