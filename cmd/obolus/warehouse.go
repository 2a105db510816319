package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/workload"
	"github.com/obolus/obolus/internal/warehouse"
)

func (a *cli) warehouseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "warehouse",
		Short: "A local stand-in for a Databricks SQL warehouse, for demos and tests",
	}
	cmd.AddCommand(a.warehouseServeCmd())
	return cmd
}

func (a *cli) warehouseServeCmd() *cobra.Command {
	var addr, token, data, duckdbPath, volumes, writeConfig string
	var holdLate, useTLS, oauth bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a local SQL warehouse, optionally holding a generated workload as Databricks tables",
		Long: `Starts a local server that speaks the Databricks SQL warehouse protocol to the
real Databricks driver and runs the SQL on DuckDB, so the Databricks path can
be tried without a workspace. With --data, a workload written by obolus gen is
loaded as system.ai_gateway.usage, system.serving.endpoint_usage and agent
tables lakehouse.agents.<agent>_payload / _traces; --write-config writes an
obolus.yaml whose databricks section points at the server. --tls serves
HTTPS with a certificate made for 127.0.0.1 (written beside the configuration
as <config>.ca.pem and named by databricks.ca_file); --oauth signs obolus in
with OAuth M2M (a generated service principal id and secret) instead of a
token. Large results go out through CloudFetch, as from a workspace. Runs
until interrupted.`,
		Example: `  obolus gen --out demo
  obolus warehouse serve --data demo --write-config demo/databricks.yaml &
  obolus init --target databricks --config demo/databricks.yaml
  obolus doctor --config demo/databricks.yaml
  obolus batch --target databricks --config demo/databricks.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The configuration (defaults and environment) sets up logging
			// and the meter provider /metrics serves.
			a.serveMetrics = true
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			if token == "" {
				b := make([]byte, 16)
				if _, err := rand.Read(b); err != nil {
					return err
				}
				token = "dapi-local-" + hex.EncodeToString(b)
			}
			wc := warehouse.Config{Token: token, DuckDBPath: duckdbPath, VolumeRoot: volumes, TLS: useTLS,
				Meter: a.tel.Meter("github.com/obolus/obolus/internal/warehouse"), Metrics: a.tel.Metrics}
			var clientID, clientSecret string
			if oauth {
				b := make([]byte, 24)
				if _, err := rand.Read(b); err != nil {
					return err
				}
				clientID, clientSecret = "obolus-local-sp", hex.EncodeToString(b)
				wc.OAuthClients = map[string]string{clientID: clientSecret}
			}
			srv, err := warehouse.New(wc)
			if err != nil {
				return err
			}
			defer srv.Close()
			var layout *workload.Layout
			if data != "" {
				if layout, err = workload.Load(ctx, srv.DB(), data); err != nil {
					return usageError{Err: err}
				}
				if !holdLate {
					if err := layout.LoadLate(ctx, srv.DB()); err != nil {
						return err
					}
				}
			}
			base, err := srv.Start(addr)
			if err != nil {
				return usageError{Err: err}
			}
			d, err := localDatabricks(base, token, layout)
			if err != nil {
				return err
			}
			if oauth {
				d.Auth = config.DatabricksAuth{Type: config.AuthOAuthM2M, ClientID: clientID, ClientSecret: clientSecret}
			}
			if useTLS && writeConfig != "" {
				d.CAFile = writeConfig + ".ca.pem"
				if err := os.WriteFile(d.CAFile, srv.CertificatePEM(), 0o644); err != nil {
					return fmt.Errorf("write the server certificate: %w", err)
				}
			}
			fmt.Fprintf(a.out, "local warehouse at %s%s (metrics at %s/metrics)\n", base, d.Path(), base)
			if layout != nil {
				for _, t := range sortedTables(layout.Rows) {
					fmt.Fprintf(a.out, "  %-45s %d rows\n", t, layout.Rows[t])
				}
			}
			if writeConfig != "" {
				if err := writeLocalConfig(writeConfig, d, layout); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "wrote %s (it holds the credentials)\n", writeConfig)
			} else {
				if oauth {
					fmt.Fprintf(a.out, "oauth: set DATABRICKS_CLIENT_ID=%s DATABRICKS_CLIENT_SECRET=%s\n", clientID, clientSecret)
				}
				fmt.Fprintf(a.out, "token: set OBOLUS_DATABRICKS_AUTH_TOKEN=%s\n", token)
				if useTLS {
					fmt.Fprintf(a.out, "certificate to trust (databricks.ca_file):\n%s", srv.CertificatePEM())
				}
			}
			fmt.Fprintln(a.out, "serving until interrupted")
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:0", "listen address (port 0: any free port)")
	f.StringVar(&token, "token", "", "bearer token to accept (default: a random one)")
	f.StringVar(&data, "data", "", "directory written by obolus gen to load as Databricks tables")
	f.BoolVar(&holdLate, "hold-late", false, "leave out the agent logs the workload marks late")
	f.StringVar(&duckdbPath, "duckdb", "", "DuckDB file behind the warehouse (default: in memory)")
	f.StringVar(&volumes, "volumes", "", "directory behind /Volumes/... paths (default: a temporary one)")
	f.StringVar(&writeConfig, "write-config", "", "write an obolus.yaml pointing at the server to this file")
	f.BoolVar(&useTLS, "tls", false, "serve HTTPS with a generated certificate (written to <write-config>.ca.pem)")
	f.BoolVar(&oauth, "oauth", false, "accept OAuth M2M sign-in with a generated service principal (written to the configuration)")
	return cmd
}

// localDatabricks is the databricks section that reaches the local server.
func localDatabricks(base, token string, layout *workload.Layout) (config.Databricks, error) {
	u, err := url.Parse(base)
	if err != nil {
		return config.Databricks{}, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return config.Databricks{}, fmt.Errorf("server address %s: %w", base, err)
	}
	d := config.Databricks{
		Host: u.Scheme + "://" + u.Hostname(), Port: port, WarehouseID: "local",
		Auth: config.DatabricksAuth{Type: config.AuthToken, Token: token},
	}
	if layout != nil {
		layout.Configure(&d)
	}
	return d, nil
}

// writeLocalConfig writes a configuration for the local warehouse: the
// databricks section and the workload's org directory; every other key keeps
// its default.
func writeLocalConfig(path string, d config.Databricks, layout *workload.Layout) error {
	agent := func(ts []config.DatabricksAgentTable) []map[string]string {
		out := []map[string]string{}
		for _, t := range ts {
			out = append(out, map[string]string{"table": t.Table, "agent_endpoint": t.AgentEndpoint, "service_principal": t.ServicePrincipal})
		}
		return out
	}
	section := map[string]any{
		"host": d.Host, "port": d.Port, "warehouse_id": d.WarehouseID,
		"auth":  map[string]string{"type": d.Auth.Type, "token": d.Auth.Token, "client_id": d.Auth.ClientID, "client_secret": d.Auth.ClientSecret},
		"usage": d.Usage, "legacy_usage": d.LegacyUsage,
		"payloads": agent(d.Payloads), "traces": agent(d.Traces),
	}
	if len(d.OTelSpans) > 0 {
		section["otel_spans"] = agent(d.OTelSpans)
	}
	if d.ServedEntities != "" {
		section["served_entities"] = d.ServedEntities
	}
	if d.Usage == "" && d.LegacyUsage == "" {
		section["usage"] = workload.UsageTable
	}
	if d.CAFile != "" {
		abs, err := filepath.Abs(d.CAFile)
		if err != nil {
			return err
		}
		section["ca_file"] = abs
	}
	doc := map[string]any{"databricks": section}
	if layout != nil && layout.Org != "" {
		abs, err := filepath.Abs(layout.Org)
		if err != nil {
			return err
		}
		doc["org"] = abs
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	head := "# Written by obolus warehouse serve: the Databricks path against the local\n# warehouse. It holds the server's credentials; the server forgets them on exit.\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func sortedTables(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }
