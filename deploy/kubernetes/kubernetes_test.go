package kubernetes

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/stream/worker"
)

// overlays are the deployable renderings; the base alone is not one.
var overlays = []string{"overlays/dev", "overlays/production"}

// rendered is one overlay's objects, decoded.
type rendered struct {
	cronJobs    []batchv1.CronJob
	deployments []appsv1.Deployment
	pdbs        []policyv1.PodDisruptionBudget
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	monitors    []serviceMonitor
	rules       []prometheusRule
}

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule
// these manifests use; decoding is strict, so a field outside it fails.
type prometheusRule struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

// ruleGroup is a Prometheus rule group, as in a rules file.
type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor
// these manifests use.
type serviceMonitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// render builds an overlay with kustomize and decodes every object strictly
// into its type: a misspelt or misplaced field fails, as it would be
// refused (or worse, silently dropped) by the API server.
func render(t *testing.T, overlay string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	var out rendered
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s as YAML: %v", overlay, r.CurId(), err)
		}
		id := fmt.Sprintf("%s %s/%s", r.GetKind(), r.GetNamespace(), r.GetName())
		var dst any
		switch gvk := r.GetApiVersion() + " " + r.GetKind(); gvk {
		case "batch/v1 CronJob":
			out.cronJobs = append(out.cronJobs, batchv1.CronJob{})
			dst = &out.cronJobs[len(out.cronJobs)-1]
		case "apps/v1 Deployment":
			out.deployments = append(out.deployments, appsv1.Deployment{})
			dst = &out.deployments[len(out.deployments)-1]
		case "policy/v1 PodDisruptionBudget":
			out.pdbs = append(out.pdbs, policyv1.PodDisruptionBudget{})
			dst = &out.pdbs[len(out.pdbs)-1]
		case "v1 Service":
			out.services = append(out.services, corev1.Service{})
			dst = &out.services[len(out.services)-1]
		case "v1 ConfigMap":
			out.configMaps = append(out.configMaps, corev1.ConfigMap{})
			dst = &out.configMaps[len(out.configMaps)-1]
		case "monitoring.coreos.com/v1 ServiceMonitor":
			out.monitors = append(out.monitors, serviceMonitor{})
			dst = &out.monitors[len(out.monitors)-1]
		case "monitoring.coreos.com/v1 PrometheusRule":
			out.rules = append(out.rules, prometheusRule{})
			dst = &out.rules[len(out.rules)-1]
		default:
			t.Errorf("%s: %s: no decoder for %s; add it to this test", overlay, id, gvk)
			continue
		}
		if err := yaml.UnmarshalStrict(b, dst); err != nil {
			t.Errorf("%s: %s does not decode strictly: %v\n%s", overlay, id, err, b)
		}
	}
	return out
}

func TestOverlaysRender(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(filepath.Base(overlay), func(t *testing.T) {
			r := render(t, overlay)
			if len(r.cronJobs) != 1 || len(r.deployments) != 1 || len(r.pdbs) != 1 || len(r.services) != 1 ||
				len(r.configMaps) != 1 || len(r.monitors) != 1 || len(r.rules) != 1 {
				t.Fatalf("want one each of CronJob, Deployment, PodDisruptionBudget, Service, ConfigMap, ServiceMonitor, PrometheusRule; got %d, %d, %d, %d, %d, %d, %d",
					len(r.cronJobs), len(r.deployments), len(r.pdbs), len(r.services), len(r.configMaps), len(r.monitors), len(r.rules))
			}
			checkStream(t, r)
			checkBatch(t, r)
		})
	}
}

// checkStream holds the Deployment to what `obolus stream` serves with the
// ConfigMap's configuration: the port of stream.http, the worker's health
// paths, a grace period beyond the worker's longest stop.
func checkStream(t *testing.T, r rendered) {
	d := r.deployments[0]
	spec := d.Spec.Template.Spec
	c := container(t, spec, "stream")
	cfg := loadConfig(t, r, spec, c)

	host, portStr, err := net.SplitHostPort(cfg.Stream.HTTP)
	if err != nil {
		t.Fatalf("stream.http %q: %v", cfg.Stream.HTTP, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("stream.http %q listens on loopback: the kubelet's probes and Prometheus cannot reach it", cfg.Stream.HTTP)
	}
	port, _ := strconv.Atoi(portStr)
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	if named["http"] != int32(port) {
		t.Errorf("container port http is %d, stream.http serves on %d", named["http"], port)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, worker.PathHealth}, {"readiness", c.ReadinessProbe, worker.PathReady}, {"startup", c.StartupProbe, worker.PathHealth}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: missing or not httpGet", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %s, the worker serves it at %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := resolvePort(p.probe.HTTPGet.Port.String(), named); got != int32(port) {
			t.Errorf("%s probe port %s is %d, stream.http serves on %d", p.name, p.probe.HTTPGet.Port.String(), got, port)
		}
	}

	bound := worker.StopBound(cfg.Stream.SessionTimeout, cfg.Stream.RebalanceTimeout)
	if g := spec.TerminationGracePeriodSeconds; g == nil {
		t.Errorf("terminationGracePeriodSeconds unset: it must exceed the worker's longest stop, %s", bound)
	} else if time.Duration(*g)*time.Second <= bound {
		t.Errorf("terminationGracePeriodSeconds %d: must exceed the worker's longest stop, %s", *g, bound)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("stream resources %v: want CPU and memory requests and a memory limit", c.Resources)
	}

	pod := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(pod) {
		t.Errorf("Deployment selector %v does not select its own pods %v (%v)", d.Spec.Selector, pod, err)
	}
	pdbSel, err := metav1.LabelSelectorAsSelector(r.pdbs[0].Spec.Selector)
	if err != nil || !pdbSel.Matches(pod) {
		t.Errorf("PodDisruptionBudget selector %v does not select the workers %v (%v)", r.pdbs[0].Spec.Selector, pod, err)
	}
	svc := r.services[0]
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) {
		t.Errorf("Service selector %v does not select the workers %v", svc.Spec.Selector, pod)
	}
	var svcPort *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if resolvePort(svc.Spec.Ports[i].TargetPort.String(), named) == int32(port) {
			svcPort = &svc.Spec.Ports[i]
		}
	}
	if svcPort == nil {
		t.Fatalf("Service %s has no port targeting stream.http's %d: %v", svc.Name, port, svc.Spec.Ports)
	}
	mon := r.monitors[0]
	monSel, err := metav1.LabelSelectorAsSelector(&mon.Spec.Selector)
	if err != nil || !monSel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select Service %s %v (%v)", mon.Spec.Selector, svc.Name, svc.Labels, err)
	}
	for _, e := range mon.Spec.Endpoints {
		if e.Port != svcPort.Name || e.Path != worker.PathMetrics {
			t.Errorf("ServiceMonitor scrapes port %q path %q, want the Service's %q and %s", e.Port, e.Path, svcPort.Name, worker.PathMetrics)
		}
	}
}

// checkBatch holds the CronJob to the settings and the batch to a
// configuration with a Databricks target, its token from a Secret.
func checkBatch(t *testing.T, r rendered) {
	cj := r.cronJobs[0]
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid: two runs of one job race on its checkpoint", cj.Spec.ConcurrencyPolicy)
	}
	if cj.Spec.StartingDeadlineSeconds == nil {
		t.Error("startingDeadlineSeconds unset")
	}
	js := cj.Spec.JobTemplate.Spec
	if js.ActiveDeadlineSeconds == nil || js.BackoffLimit == nil {
		t.Errorf("activeDeadlineSeconds %v, backoffLimit %v: set both", js.ActiveDeadlineSeconds, js.BackoffLimit)
	}
	if period := cronPeriod(t, cj.Spec.Schedule); js.ActiveDeadlineSeconds != nil && time.Duration(*js.ActiveDeadlineSeconds)*time.Second >= period {
		t.Errorf("activeDeadlineSeconds %d is not under the schedule's period %s: with Forbid a hung run skips the next", *js.ActiveDeadlineSeconds, period)
	}
	spec := js.Template.Spec
	c := container(t, spec, "batch")
	cfg := loadConfig(t, r, spec, c)
	if slices.Contains(c.Args, "--target") && !cfg.Databricks.Enabled() {
		t.Error("the batch runs --target databricks but the configuration has no databricks.host")
	}
	var token *corev1.EnvVar
	for i, e := range c.Env {
		if e.Name == "OBOLUS_DATABRICKS_AUTH_TOKEN" {
			token = &c.Env[i]
		}
	}
	if token == nil || token.ValueFrom == nil || token.ValueFrom.SecretKeyRef == nil {
		t.Errorf("OBOLUS_DATABRICKS_AUTH_TOKEN: want it from a Secret, got %+v", token)
	}
}

// cronPeriod is the period of the schedules these manifests use: "M * * * *"
// (hourly) and "*/N * * * *" (every N minutes).
func cronPeriod(t *testing.T, s string) time.Duration {
	f := strings.Fields(s)
	if len(f) != 5 || f[1] != "*" || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		t.Fatalf("schedule %q: this test reads only hourly and every-N-minutes schedules; extend cronPeriod", s)
	}
	if n, ok := strings.CutPrefix(f[0], "*/"); ok {
		m, err := strconv.Atoi(n)
		if err != nil || m <= 0 {
			t.Fatalf("schedule %q: %v", s, err)
		}
		return time.Duration(m) * time.Minute
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		t.Fatalf("schedule %q: minute %q", s, f[0])
	}
	return time.Hour
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// resolvePort is a port given by name or number, as a number.
func resolvePort(p string, named map[string]int32) int32 {
	if n, err := strconv.Atoi(p); err == nil {
		return int32(n)
	}
	return named[p]
}

// loadConfig loads, through internal/config, the file the container's
// --config names from the ConfigMap mounted there, with the container's
// environment (values from Secrets and the downward API stand in as
// "from-<source>"). The loader refuses unknown keys, so every key of the
// ConfigMap is one obolus reads; an OBOLUS_ variable must name a key too,
// since the environment is matched by name and a misspelt one is ignored.
func loadConfig(t *testing.T, r rendered, spec corev1.PodSpec, c corev1.Container) *config.Config {
	t.Helper()
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container %s: no --config in %v", c.Name, c.Args)
	}
	file := c.Args[i+1]
	var data string
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) != filepath.Clean(m.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			for _, cm := range r.configMaps {
				if cm.Name == v.ConfigMap.Name {
					var ok bool
					if data, ok = cm.Data[filepath.Base(file)]; !ok {
						t.Fatalf("ConfigMap %s has no key %s", cm.Name, filepath.Base(file))
					}
				}
			}
		}
	}
	if data == "" {
		t.Fatalf("container %s: --config %s is not a file of a mounted ConfigMap of this rendering", c.Name, file)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}

	v := config.New()
	keys := map[string]bool{}
	for _, k := range v.AllKeys() {
		keys["OBOLUS_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	for _, e := range c.Env {
		val := e.Value
		if e.ValueFrom != nil {
			val = "from-" + map[bool]string{true: "secret", false: "field"}[e.ValueFrom.SecretKeyRef != nil]
		}
		if strings.HasPrefix(e.Name, "OBOLUS_") && !keys[e.Name] {
			t.Errorf("container %s: env %s names no configuration key", c.Name, e.Name)
		}
		t.Setenv(e.Name, val)
	}
	cfg, err := config.Load(v, path)
	if err != nil {
		t.Fatalf("container %s: %s from the ConfigMap: %v", c.Name, file, err)
	}
	return cfg
}

// TestAlertRules checks the PrometheusRule: every metric an expression reads
// is one docs/streaming.md documents (and so one obolus exposes), and
// promtool, Prometheus' own checker, accepts the groups and passes the alert
// unit tests in testdata/alerts_test.yaml.
func TestAlertRules(t *testing.T) {
	docs, err := os.ReadFile("../../docs/streaming.md")
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\bobolus_[a-z_]+`)
	for _, overlay := range overlays {
		r := render(t, overlay)
		for _, pr := range r.rules {
			for _, g := range pr.Spec.Groups {
				for _, rl := range g.Rules {
					for _, m := range metric.FindAllString(rl.Expr, -1) {
						if !strings.Contains(string(docs), "`"+m+"`") {
							t.Errorf("%s: alert %s reads %s, which docs/streaming.md does not list", overlay, rl.Alert, m)
						}
					}
				}
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (Debian package prometheus; .ci/run installs it): the expressions are not checked")
	}
	r := render(t, overlays[len(overlays)-1])
	dir := t.TempDir()
	b, err := yaml.Marshal(map[string]any{"groups": r.rules[0].Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("testdata/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", filepath.Join(dir, "alerts_test.yaml")}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
