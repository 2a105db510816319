package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/telemetry"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
)

// cli carries what every subcommand needs once flags are parsed.
type cli struct {
	v          *viper.Viper
	configFile string
	cfg        *config.Config
	log        *slog.Logger
	tel        *telemetry.Telemetry
	// serveMetrics asks observe for a Prometheus reader: the commands with
	// an HTTP server (stream, dev, warehouse serve) set it before loading.
	serveMetrics bool
	out          io.Writer // command output (results), as opposed to logs
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newRoot() *cobra.Command {
	a := &cli{v: config.New()}
	root := &cobra.Command{
		Use:           "obolus",
		Short:         "Per-user attribution of Databricks AI Gateway usage made by agents' service principals",
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var cpuProfile, memProfile string
	var profFile *os.File
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		a.out = cmd.OutOrStdout()
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return usageErrorf("--cpuprofile: %v", err)
		}
		profFile = f
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if profFile != nil {
			pprof.StopCPUProfile()
			profFile.Close()
		}
		if memProfile != "" {
			writeAllocProfile(memProfile)
		}
	}
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentFlags().StringVar(&memProfile, "memprofile", "", "write the run's allocation profile to this file when it ends")
	_ = root.PersistentFlags().MarkHidden("memprofile")
	root.PersistentFlags().StringVarP(&a.configFile, "config", "c", "", "configuration file (YAML); see deploy/obolus.example.yaml")
	root.PersistentFlags().String("log-level", "", "log level: debug, info, warn, error (overrides log.level)")
	root.PersistentFlags().String("log-format", "", "log format: text or json (overrides log.format)")
	root.PersistentFlags().String("store", "", "DuckDB store file (overrides store.duckdb)")
	bind(a.v, root.PersistentFlags(), map[string]string{"log-level": "log.level", "log-format": "log.format", "store": "store.duckdb"})
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{Err: err} })

	root.AddCommand(a.batchCmd(), a.genCmd(), a.scoreCmd(), a.summaryCmd())
	root.AddCommand(a.reportCmd())
	root.AddCommand(a.streamCmd(), a.devCmd())
	root.AddCommand(a.initCmd(), a.doctorCmd(), a.warehouseCmd(), a.pushdownCmd())
	// No command takes positional arguments: a stray one (a path without
	// its flag, say) is a usage error, not silently ignored.
	var noArgs func(*cobra.Command)
	noArgs = func(c *cobra.Command) {
		if c.Args == nil && c.Runnable() {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErrorf("%s takes no arguments, got %q; options are flags (see %s --help)", cmd.CommandPath(), args, cmd.CommandPath())
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			noArgs(sub)
		}
	}
	for _, c := range root.Commands() {
		noArgs(c)
	}
	return root
}

// bind lets a flag override a config key only when the flag was given.
func bind(v *viper.Viper, fs *pflag.FlagSet, keys map[string]string) {
	for flag, key := range keys {
		_ = v.BindPFlag(key, fs.Lookup(flag))
	}
}

// load reads and validates the configuration and sets up logging and
// telemetry; call it at the start of every command that needs them.
func (a *cli) load(ctx context.Context) error {
	if a.cfg != nil {
		return nil
	}
	cfg, err := config.Load(a.v, a.configFile)
	if err != nil {
		return usageError{Err: err}
	}
	return a.observe(ctx, cfg)
}

// observe keeps cfg and sets up logging and telemetry from it.
func (a *cli) observe(ctx context.Context, cfg *config.Config) error {
	a.cfg = cfg
	a.log = telemetry.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	slog.SetDefault(a.log)
	var err error
	exp := telemetry.Exporter{Kind: cfg.Telemetry.Exporter, Endpoint: cfg.Telemetry.Endpoint, Insecure: cfg.Telemetry.Insecure,
		Prometheus: a.serveMetrics, MetricsFile: cfg.Telemetry.MetricsFile, Pushgateway: cfg.Telemetry.Pushgateway}
	if a.tel, err = telemetry.Setup(ctx, exp, "obolus", version(), os.Stdout); err != nil {
		return usageError{Err: err}
	}
	return nil
}

func (a *cli) close(ctx context.Context) {
	if a.tel != nil {
		if err := a.tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("telemetry shutdown", "err", err)
		}
	}
}

func plural(n int64, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}

// openStoreReadOnly opens the configured store for a command that only reads
// it: a path where no store exists is a usage error naming the path.
func (a *cli) openStoreReadOnly(ctx context.Context) (*duckdb.Store, error) {
	store, err := duckdb.OpenReadOnly(ctx, a.cfg.Store.DuckDB)
	return store, a.storeError(err)
}

// storeError says why the store could not be opened: a usage error (exit 2)
// when the path names no store, not a DuckDB file, or a store of another
// schema version — each fixed by the user, not by a retry.
func (a *cli) storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, duckdb.ErrNoStore), errors.Is(err, duckdb.ErrNotDuckDB), errors.Is(err, schemas.ErrStoreVersion):
		return usageError{Err: err}
	}
	return fmt.Errorf("open store %s: %w", a.cfg.Store.DuckDB, err)
}

// openStore opens, or creates, the configured store (and its directory)
// for a command that writes.
func (a *cli) openStore(ctx context.Context) (*duckdb.Store, error) {
	if err := os.MkdirAll(filepath.Dir(a.cfg.Store.DuckDB), 0o755); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	store, err := app.OpenStore(ctx, a.cfg)
	return store, a.storeError(err)
}

// writeAllocProfile writes what the run allocated, for finding what keeps
// the collector busy; a failure is only logged, the run's outcome stands.
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		slog.Warn("--memprofile", "err", err)
	}
}
