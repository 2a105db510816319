package config

import (
	"strings"
	"testing"
)

func TestDatabricksSection(t *testing.T) {
	base := "databricks:\n  host: adb-1.2.azuredatabricks.net\n  warehouse_id: abc123\n"
	tests := []struct{ name, body, want string }{
		{"valid", base, ""},
		{"unused section is not checked", "databricks: {catalog: \"x;y\"}\n", ""},
		{"bad mode", "databricks: {mode: turbo}\n", "databricks.mode"},
		{"no path", "databricks: {host: h}\n", "databricks.http_path"},
		{"both paths", base + "  http_path: /sql/1.0/warehouses/x\n", "databricks.http_path: set http_path or warehouse_id"},
		{"catalog injection", base + "  catalog: \"main; DROP TABLE x\"\n", "databricks.catalog"},
		{"usage injection", base + "  usage: \"system.ai_gateway.usage--\"\n", "databricks.usage"},
		{"no usage at all", base + "  usage: \"\"\n", "databricks.usage: empty"},
		{"payload table", base + "  payloads: [{table: \"a.b\", service_principal: sp}]\n", "databricks.payloads[0].table"},
		{"payload principal", base + "  payloads: [{table: a.b.c}]\n", "databricks.payloads[0].service_principal"},
		{"unknown mapped column", base + "  payloads: [{table: a.b.c, service_principal: sp, columns: {user: u}}]\n", "databricks.payloads[0].columns.user"},
		{"mapped column injection", base + "  traces: [{table: a.b.c, service_principal: sp, columns: {trace_id: \"x) --\"}}]\n", "databricks.traces[0].columns.trace_id"},
		{"volume", base + "  staging_volume: /tmp/x\n", "databricks.staging_volume"},
		{"oauth half", base + "  auth: {type: oauth_m2m, client_id: x}\n", "databricks.auth"},
		{"host with path", "databricks: {host: \"h/x\", warehouse_id: a}\n", "databricks.host"},
		// The token would go out in cleartext: refused before any connection.
		{"plain http to a remote host", "databricks: {host: \"http://warehouse.example.com\", warehouse_id: a}\n", "plain http is only for a local warehouse"},
		{"plain http to a private address", "databricks: {host: \"http://10.0.0.7\", warehouse_id: a}\n", "databricks.host"},
		{"plain http to loopback", "databricks: {host: \"http://127.0.0.1\", port: 8080, warehouse_id: a}\n", ""},
		{"plain http to localhost", "databricks: {host: \"http://localhost\", port: 8080, warehouse_id: a}\n", ""},
		{"https anywhere", "databricks: {host: \"https://adb-1.2.azuredatabricks.net\", warehouse_id: a}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(New(), write(t, tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDatabricksCredentialsFromEnvironment(t *testing.T) {
	env := map[string]string{EnvDatabricksToken: "dapi-env", EnvDatabricksClientID: "id", EnvDatabricksClientSecret: "secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	d := Databricks{Auth: DatabricksAuth{Type: AuthToken}}
	if got := d.Credentials(lookup).Token; got != "dapi-env" {
		t.Errorf("token from environment = %q", got)
	}
	d.Auth.Token = "dapi-config"
	if got := d.Credentials(lookup).Token; got != "dapi-config" {
		t.Errorf("configured token should win, got %q", got)
	}
	d = Databricks{Auth: DatabricksAuth{Type: AuthOAuthM2M}}
	if a := d.Credentials(lookup); a.ClientID != "id" || a.ClientSecret != "secret" || a.Token != "" {
		t.Errorf("oauth credentials = %+v", a)
	}
	if got := (Databricks{WarehouseID: "abc"}).Path(); got != "/sql/1.0/warehouses/abc" {
		t.Errorf("Path() = %q", got)
	}
}
