package app

import (
	"context"
	"log/slog"
	"slices"

	"github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/ingest/otlp"
	"github.com/obolus/obolus/internal/budget"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/internal/stream/worker"
	kafkasink "github.com/obolus/obolus/sink/kafka"
	"github.com/obolus/obolus/sink/webhook"
)

// KafkaOptions is how the stream section reaches the cluster: TLS from its
// files, SASL from its credentials.
func KafkaOptions(s config.Stream) (kafka.Options, error) {
	o, err := kafka.NewOptions(kafka.ClientConfig{
		Brokers: s.Brokers, ClientID: s.ClientID,
		TLS: kafka.TLSFiles{Enabled: s.TLS.Enabled, CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile,
			ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify},
		SASL: kafka.SASLCredentials{Mechanism: s.SASL.Mechanism, Username: s.SASL.Username, Password: s.SASL.Password},
	})
	if err != nil {
		return o, UsageError{err}
	}
	return o, nil
}

// WorkerConfig is the stream worker the configuration describes, without a
// store (the caller opens one when the load stage runs).
func WorkerConfig(ctx context.Context, cfg *config.Config, s config.Stream, log *slog.Logger) (worker.Config, error) {
	opts, err := KafkaOptions(s)
	if err != nil {
		return worker.Config{}, err
	}
	prices, org, err := Enrichment(cfg)
	if err != nil {
		return worker.Config{}, err
	}
	// Served entities are read once, when the worker starts: restart it to
	// take in a served entity added since.
	served, err := ServedEntities(ctx, cfg, log)
	if err != nil {
		return worker.Config{}, err
	}
	stages := slices.Clone(s.Stages)
	if s.HasStage(config.StageLoad) && !slices.Contains(stages, worker.StageLoad) {
		stages = append(stages, worker.StageLoad)
	}
	return worker.Config{
		Options: opts,
		Group:   s.Group,
		Topics: worker.Topics{Usage: s.Topics.Usage, Agents: s.Topics.Agents, Keyed: s.Topics.Keyed,
			Output: s.Topics.Output, DeadLetter: s.Topics.DeadLetter, Alerts: s.Topics.Alerts},
		Stages:         stages,
		CreateTopics:   s.CreateTopics,
		Partitions:     s.Partitions,
		CommitInterval: s.CommitInterval, IdleFlush: s.IdleFlush,
		SessionTimeout: s.SessionTimeout, RebalanceTimeout: s.RebalanceTimeout,
		ProducerDelay: s.ProducerDelay, MaxFuture: s.MaxFuture,
		MaxMessageBytes: s.MaxMessageBytes,
		Limits:          cfg.IngestLimits(),
		HTTP:            s.HTTP,
		Join: stream.Config{Match: cfg.MatchConfig(), Prices: prices, Org: org, Served: served,
			Grace: s.Grace, Horizon: s.Horizon, AgentRetention: s.AgentRetention, Idle: s.IdleFlush},
		ServicePrincipals: cfg.ServicePrincipals(s),
		SpanKeys:          cfg.OTel.SpanKeys(),
		OTLP: worker.OTLP{Listen: s.OTLP.Listen, Handler: otlp.Config{MaxBodyBytes: s.OTLP.MaxBodyBytes, MaxInFlight: s.OTLP.MaxInFlight,
			Timeout: s.OTLP.Timeout, RetryAfter: s.OTLP.RetryAfter, BearerToken: s.OTLP.BearerToken}},
		Alerts: budgetAlerts(cfg.Budgets, log),
		Log:    log,
	}, nil
}

// budgetAlerts converts the budgets section for the load stage; nil when
// alerts are off. The stream measures spend at list price: an allocated
// basis needs the month's bill, which lands long after the stream has
// answered, so it falls back to list, and says so once.
func budgetAlerts(b config.Budgets, log *slog.Logger) *worker.Alerts {
	if !b.Alerts.Enabled {
		return nil
	}
	out := &worker.Alerts{Budgets: kafkasink.Budgets{Thresholds: budget.Thresholds{Warn: b.Warn, Critical: b.Critical},
		DefaultUser: kafkasink.BudgetAmounts{Day: b.DefaultUser.Day, Month: b.DefaultUser.Month},
		Limits:      map[[2]string]kafkasink.BudgetAmounts{}}}
	for _, l := range b.Limits {
		out.Budgets.Limits[[2]string{l.Scope, l.Name}] = kafkasink.BudgetAmounts{Day: l.Day, Month: l.Month}
	}
	if !out.Budgets.Any() {
		return nil
	}
	if b.Basis == config.BasisAllocated {
		log.Info("budgets.basis is allocated: streaming budget alerts measure spend at list price (attribution cost_usd); the allocated bill is for obolus report budgets")
	}
	w := b.Alerts.Webhook
	out.Webhook = webhook.Config{URL: w.URL, Secret: w.Secret, Timeout: w.Timeout, Attempts: w.Attempts, Backoff: w.Backoff}
	out.WebhookEvery = w.Every
	return out
}
