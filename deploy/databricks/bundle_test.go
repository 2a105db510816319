package databricks

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// bundle is the part of the Databricks Asset Bundle schema databricks.yml
// uses. Decoding is strict: a key outside it fails, so a typo cannot pass.
type bundle struct {
	Bundle struct {
		Name string `yaml:"name"`
	} `yaml:"bundle"`
	Variables map[string]struct {
		Description string `yaml:"description"`
		Default     any    `yaml:"default"`
	} `yaml:"variables"`
	Resources struct {
		Jobs       map[string]job       `yaml:"jobs"`
		Dashboards map[string]dashboard `yaml:"dashboards"`
	} `yaml:"resources"`
}

type job struct {
	Name              string `yaml:"name"`
	Description       string `yaml:"description"`
	MaxConcurrentRuns int    `yaml:"max_concurrent_runs"`
	Schedule          *struct {
		QuartzCronExpression string `yaml:"quartz_cron_expression"`
		TimezoneID           string `yaml:"timezone_id"`
		PauseStatus          string `yaml:"pause_status"`
	} `yaml:"schedule"`
	Tasks []struct {
		TaskKey string `yaml:"task_key"`
		SQLTask struct {
			WarehouseID string `yaml:"warehouse_id"`
			File        struct {
				Path   string `yaml:"path"`
				Source string `yaml:"source"`
			} `yaml:"file"`
		} `yaml:"sql_task"`
		TimeoutSeconds         int `yaml:"timeout_seconds"`
		MaxRetries             int `yaml:"max_retries"`
		MinRetryIntervalMillis int `yaml:"min_retry_interval_millis"`
	} `yaml:"tasks"`
}

type dashboard struct {
	DisplayName    string `yaml:"display_name"`
	FilePath       string `yaml:"file_path"`
	WarehouseID    string `yaml:"warehouse_id"`
	DatasetCatalog string `yaml:"dataset_catalog"`
	DatasetSchema  string `yaml:"dataset_schema"`
}

// Where obolus pushdown render --out and --views-out write, as
// docs/deploy.md tells users to.
const (
	jobScript   = "./obolus_job.sql"
	viewsScript = "./obolus_views.sql"
)

func TestBundle(t *testing.T) {
	raw, err := os.ReadFile("databricks.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var b bundle
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("databricks.yml does not decode strictly: %v", err)
	}
	if b.Bundle.Name == "" {
		t.Error("bundle.name is empty")
	}
	// Every ${var.x} is declared, and every declared variable is used.
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{var\.([a-z_]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
		if _, ok := b.Variables[m[1]]; !ok {
			t.Errorf("${var.%s} is used but not declared", m[1])
		}
	}
	for name, v := range b.Variables {
		if !used[name] {
			t.Errorf("variable %s is declared but not used", name)
		}
		if v.Description == "" {
			t.Errorf("variable %s has no description", name)
		}
	}
	for _, name := range []string{"warehouse_id", "catalog", "schema", "schedule"} {
		if _, ok := b.Variables[name]; !ok {
			t.Errorf("variable %s is missing", name)
		}
	}

	att, ok := b.Resources.Jobs["obolus_attribution"]
	if !ok {
		t.Fatal("no job obolus_attribution")
	}
	if att.Schedule == nil || att.Schedule.QuartzCronExpression != "${var.schedule}" {
		t.Errorf("obolus_attribution is not scheduled by ${var.schedule}: %+v", att.Schedule)
	}
	if att.MaxConcurrentRuns != 1 {
		t.Errorf("obolus_attribution max_concurrent_runs = %d: two runs would read one checkpoint", att.MaxConcurrentRuns)
	}
	if cron, ok := b.Variables["schedule"].Default.(string); !ok || len(strings.Fields(cron)) < 6 {
		t.Errorf("schedule default %v is not a Quartz expression (seconds first)", b.Variables["schedule"].Default)
	}
	views, ok := b.Resources.Jobs["obolus_views"]
	if !ok {
		t.Fatal("no job obolus_views")
	}
	for _, c := range []struct {
		job  job
		path string
	}{{att, jobScript}, {views, viewsScript}} {
		if len(c.job.Tasks) != 1 {
			t.Fatalf("%s: %d tasks, want 1", c.job.Name, len(c.job.Tasks))
		}
		task := c.job.Tasks[0].SQLTask
		if task.File.Path != c.path || task.File.Source != "WORKSPACE" {
			t.Errorf("%s runs %s (%s), want the rendered script %s from the workspace", c.job.Name, task.File.Path, task.File.Source, c.path)
		}
		if task.WarehouseID != "${var.warehouse_id}" {
			t.Errorf("%s runs on %q, want ${var.warehouse_id}", c.job.Name, task.WarehouseID)
		}
	}

	d, ok := b.Resources.Dashboards["obolus_chargeback"]
	if !ok {
		t.Fatal("no dashboard obolus_chargeback")
	}
	body, err := os.ReadFile(filepath.FromSlash(d.FilePath))
	if err != nil {
		t.Fatalf("dashboard file: %v", err)
	}
	var lv struct {
		Datasets []struct {
			Name string `json:"name"`
		} `json:"datasets"`
		Pages []json.RawMessage `json:"pages"`
	}
	if err := json.Unmarshal(body, &lv); err != nil || len(lv.Datasets) == 0 || len(lv.Pages) == 0 {
		t.Errorf("dashboard %s: %d datasets, %d pages, %v", d.FilePath, len(lv.Datasets), len(lv.Pages), err)
	}
	if d.WarehouseID != "${var.warehouse_id}" || d.DatasetCatalog != "${var.catalog}" || d.DatasetSchema != "${var.schema}" {
		t.Errorf("dashboard is not pointed at the bundle's warehouse, catalog and schema: %+v", d)
	}
}
