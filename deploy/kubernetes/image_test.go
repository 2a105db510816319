package kubernetes

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// containerfile is the image the manifests run (docs/deploy.md, Container).
const containerfile = "../container/Containerfile"

// imageSpec is what the manifests rely on from the Containerfile's final
// stage.
type imageSpec struct {
	uid, gid   int64
	ports      []int32
	workdir    string
	volumes    []string
	entrypoint string
}

// readContainerfile reads USER, EXPOSE, WORKDIR, VOLUME and ENTRYPOINT of
// the last stage, joining continuation lines. It reads only the forms the
// Containerfile uses: a numeric USER uid:gid, EXPOSE of numbers, VOLUME and
// ENTRYPOINT in JSON form.
func readContainerfile(t *testing.T) imageSpec {
	t.Helper()
	b, err := os.ReadFile(containerfile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cont := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if cont == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	var img imageSpec
	jsonList := func(instr, v string) []string {
		v = strings.TrimSpace(v)
		if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
			t.Fatalf("%s %s: want the JSON (exec) form", instr, v)
		}
		var out []string
		for _, f := range strings.Split(strings.Trim(v, "[]"), ",") {
			out = append(out, strings.Trim(strings.TrimSpace(f), `"`))
		}
		return out
	}
	for _, l := range lines {
		instr, arg, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM": // a new stage: only the last one's settings count
			img = imageSpec{}
		case "USER":
			u, g, ok := strings.Cut(strings.TrimSpace(arg), ":")
			uid, err1 := strconv.ParseInt(u, 10, 64)
			gid, err2 := strconv.ParseInt(g, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				t.Fatalf("USER %s: want numeric uid:gid (Kubernetes' runAsNonRoot can only verify a numeric user)", arg)
			}
			img.uid, img.gid = uid, gid
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("EXPOSE %s: %v", p, err)
				}
				img.ports = append(img.ports, int32(n))
			}
		case "WORKDIR":
			img.workdir = strings.TrimSpace(arg)
		case "VOLUME":
			img.volumes = append(img.volumes, jsonList(instr, arg)...)
		case "ENTRYPOINT":
			e := jsonList(instr, arg)
			if len(e) != 1 {
				t.Fatalf("ENTRYPOINT %s: want the binary alone, the manifests pass the subcommand as args", arg)
			}
			img.entrypoint = e[0]
		}
	}
	return img
}

// TestImageMatchesManifests holds the manifests to the image they run: the
// pods' user is the image's user, the stream's port is the one the image
// exposes, the batch's data volume is mounted on the image's working
// directory and volume, and every container passes args to the image's
// entry point rather than replacing it.
func TestImageMatchesManifests(t *testing.T) {
	img := readContainerfile(t)
	if img.uid == 0 || img.entrypoint == "" || len(img.ports) == 0 || img.workdir == "" {
		t.Fatalf("%s: want a non-root USER, ENTRYPOINT, EXPOSE and WORKDIR; read %+v", containerfile, img)
	}
	if len(img.volumes) != 1 || img.volumes[0] != img.workdir {
		t.Errorf("VOLUME %v: want the working directory %s, where the store is written", img.volumes, img.workdir)
	}
	for _, overlay := range overlays {
		t.Run(filepath.Base(overlay), func(t *testing.T) {
			r := render(t, overlay)
			if len(r.cronJobs) != 1 || len(r.deployments) != 1 {
				t.Fatalf("want one CronJob and one Deployment, got %d and %d", len(r.cronJobs), len(r.deployments))
			}
			pods := map[string]corev1.PodSpec{
				"CronJob " + r.cronJobs[0].Name:       r.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec,
				"Deployment " + r.deployments[0].Name: r.deployments[0].Spec.Template.Spec,
			}
			for name, spec := range pods {
				var uid, gid *int64
				if sc := spec.SecurityContext; sc != nil {
					uid, gid = sc.RunAsUser, sc.RunAsGroup
				}
				if uid == nil || *uid != img.uid || gid == nil || *gid != img.gid {
					t.Errorf("%s: pod runAsUser %s, runAsGroup %s: want %d and %d, the image's USER", name, orUnset(uid), orUnset(gid), img.uid, img.gid)
				}
				for _, c := range spec.Containers {
					if c.Image != "obolus" && !strings.Contains(c.Image, "/obolus") {
						t.Errorf("%s: container %s runs image %q, not obolus", name, c.Name, c.Image)
					}
					if len(c.Command) > 0 {
						t.Errorf("%s: container %s sets command %v: the image's entry point is %s; pass the subcommand as args", name, c.Name, c.Command, img.entrypoint)
					}
				}
			}

			stream := container(t, r.deployments[0].Spec.Template.Spec, "stream")
			for _, p := range stream.Ports {
				if !slices.Contains(img.ports, p.ContainerPort) {
					t.Errorf("stream container port %s %d: the image exposes %v", p.Name, p.ContainerPort, img.ports)
				}
			}

			batch := container(t, r.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec, "batch")
			mounted := false
			for _, m := range batch.VolumeMounts {
				mounted = mounted || m.MountPath == img.workdir && !m.ReadOnly
			}
			if !mounted {
				t.Errorf("batch mounts %v: want a writable volume at %s, the image's working directory and volume", batch.VolumeMounts, img.workdir)
			}
		})
	}
}

func orUnset(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}
