package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/obolus/obolus/schemas"
)

func TestOTelConfig(t *testing.T) {
	// Defaults are the documented keys; a span source may leave the
	// service principal to the span's resource.
	c, err := Load(New(), write(t, "sources: [{kind: otel_spans, path: spans/}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.OTel.SpanKeys(); !slices.Equal(got.User, schemas.DefaultSpanKeys.User) ||
		!slices.Equal(got.RequestID, schemas.DefaultSpanKeys.RequestID) || got.ServicePrincipal != "obolus.service_principal" {
		t.Errorf("span keys %+v", got)
	}
	if !c.Sources[0].IsAgent() {
		t.Error("an otel_spans source is not an agent source")
	}

	// A span table may leave the service principal to the resource too.
	if _, err := Load(New(), write(t, "databricks: {host: adb-1.azuredatabricks.net, warehouse_id: abc, otel_spans: [{table: a.b.c}]}\n")); err != nil {
		t.Errorf("span table without a service principal: %v", err)
	}

	t.Setenv("OBOLUS_OTEL_USER_ATTRIBUTES", "app.user,enduser.id")
	c, err = Load(New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.OTel.UserAttributes, []string{"app.user", "enduser.id"}) {
		t.Errorf("env override: %v", c.OTel.UserAttributes)
	}
}

func TestOTelConfigErrorsNameTheKey(t *testing.T) {
	const dbx = "databricks: {host: adb-1.azuredatabricks.net, warehouse_id: abc, "
	for _, tt := range []struct{ name, body, want string }{
		{"no principal anywhere", "otel: {service_principal_attribute: ''}\nsources: [{kind: otel_spans, path: x}]\n",
			"sources[0].service_principal: empty, and so is otel.service_principal_attribute"},
		{"no user attributes", "otel: {user_attributes: []}\n", "otel.user_attributes: empty"},
		{"blank attribute", "otel: {session_attributes: [session.id, ' ']}\n", "otel.session_attributes[1]"},
		{"unknown otel key", "otel: {user_keys: [a]}\n", "user_keys"},
		{"pushdown", dbx + "mode: pushdown, otel_spans: [{table: a.b.c, service_principal: sp}]}\n", "databricks.otel_spans: pushdown mode does not read span tables"},
		{"bad column mapping", dbx + "otel_spans: [{table: a.b.c, columns: {user: u}}]}\n", "databricks.otel_spans[0].columns.user"},
		{"no principal for a table", "otel: {service_principal_attribute: ''}\n" + dbx + "otel_spans: [{table: a.b.c}]}\n",
			"databricks.otel_spans[0].service_principal: empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(New(), write(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
