// Package kafka is the consumer side of streaming attribution: Kafka
// connections, consumer groups, decoding and re-keying input, dead letters.
//
// Input messages are JSON objects whose fields are the Databricks column
// names, decoded by the same decoders as the batch path (package ingest).
// The re-keying stage partitions usage events and agent requests by service
// principal into one keyed topic, so that an event and every agent request it
// could match — by id or by time — meet in one partition, on one worker.
package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	kplain "github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// Options say how to reach the cluster.
type Options struct {
	Brokers  []string
	TLS      *tls.Config
	SASL     sasl.Mechanism
	ClientID string

	// creds are SASL's for franz-go, which has mechanisms of its own.
	creds SASLCredentials
}

// ClientConfig is how the configuration describes reaching the cluster.
type ClientConfig struct {
	Brokers  []string
	ClientID string // "" means obolus
	TLS      TLSFiles
	SASL     SASLCredentials
}

// TLSFiles configures TLS from PEM files.
type TLSFiles struct {
	Enabled                   bool
	CAFile, CertFile, KeyFile string
	ServerName                string
	InsecureSkipVerify        bool
}

// SASLCredentials name a SASL mechanism (SASLPlain, SASLScramSHA256 or
// SASLScramSHA512, any case) and its credentials.
type SASLCredentials struct {
	Mechanism, Username, Password string
}

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// NewOptions builds connection options: the TLS configuration from its
// files, the SASL mechanism from its credentials. Errors name the stream
// configuration keys, where a user fixes them.
func NewOptions(s ClientConfig) (Options, error) {
	o := Options{Brokers: s.Brokers, ClientID: cmp.Or(s.ClientID, "obolus"), creds: s.SASL}
	if s.TLS.Enabled {
		t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify} //nolint:gosec // opt-in, for test clusters
		if s.TLS.CAFile != "" {
			pem, err := os.ReadFile(s.TLS.CAFile)
			if err != nil {
				return o, fmt.Errorf("stream.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("stream.tls.ca_file %s: no PEM certificate in it", s.TLS.CAFile)
			}
			t.RootCAs = pool
		}
		if s.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
			if err != nil {
				return o, fmt.Errorf("stream.tls.cert_file/key_file: %w", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		o.TLS = t
	}
	switch strings.ToLower(s.SASL.Mechanism) {
	case "":
	case SASLPlain:
		o.SASL = plain.Mechanism{Username: s.SASL.Username, Password: s.SASL.Password}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if strings.EqualFold(s.SASL.Mechanism, SASLScramSHA512) {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.SASL.Username, s.SASL.Password)
		if err != nil {
			return o, fmt.Errorf("stream.sasl: %w", err)
		}
		o.SASL = m
	default:
		return o, fmt.Errorf("stream.sasl.mechanism %q: use plain, scram-sha-256 or scram-sha-512", s.SASL.Mechanism)
	}
	return o, nil
}

// KgoOpts are the same connection settings for franz-go's client, which
// obolus uses where it needs Kafka transactions (kafka-go has none): the
// budget alerts' producer, and reading what it committed.
func (o Options) KgoOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID(o.ClientID), kgo.DialTimeout(10 * time.Second)}
	if o.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	// NewOptions has validated the mechanism.
	switch c := o.creds; strings.ToLower(c.Mechanism) {
	case SASLPlain:
		opts = append(opts, kgo.SASL(kplain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(kscram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(kscram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()))
	}
	return opts
}

// Dialer is for readers and consumer groups.
func (o Options) Dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: o.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: o.TLS, SASLMechanism: o.SASL}
}

// Transport is for writers and the admin client.
func (o Options) Transport() *kafka.Transport {
	return &kafka.Transport{ClientID: o.ClientID, DialTimeout: 10 * time.Second, TLS: o.TLS, SASL: o.SASL}
}

// Addr is the bootstrap address list.
func (o Options) Addr() net.Addr { return kafka.TCP(o.Brokers...) }

// Client is an admin and group client over a fresh transport.
func (o Options) Client() *kafka.Client {
	return &kafka.Client{Addr: o.Addr(), Timeout: 15 * time.Second, Transport: o.Transport()}
}

// Writer returns a synchronous, fully acknowledged writer for topic: a
// WriteMessages that returns nil means the messages are durable. Batches
// go out after a few milliseconds instead of kafka-go's default second.
// Messages are not compressed: compressing costs the worker more CPU than
// it saves on a fast network.
func (o Options) Writer(topic string, balancer kafka.Balancer) *kafka.Writer {
	return &kafka.Writer{
		Addr:         o.Addr(),
		Topic:        topic,
		Balancer:     balancer,
		Transport:    o.Transport(),
		RequiredAcks: kafka.RequireAll,
		// kafka-go allocates a batch of BatchSize messages (~200 B each) per
		// partition per write: at 2000 that was 400 KB for a write of a few
		// records, 14% of the worker's CPU in allocation and clearing.
		BatchSize:    256,
		BatchBytes:   1 << 20,
		BatchTimeout: 2 * time.Millisecond,
		MaxAttempts:  5,
	}
}

// EnsureTopics creates the topics that do not exist yet with partitions
// partitions, and reports the partition count of each.
func EnsureTopics(ctx context.Context, o Options, partitions int, topics ...string) (map[string]int, error) {
	c := o.Client()
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: -1})
	}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics %s on %s: %w", strings.Join(topics, ", "), strings.Join(o.Brokers, ","), err)
	}
	for t, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return nil, fmt.Errorf("create topic %s: %w", t, terr)
		}
	}
	return PartitionCounts(ctx, o, topics...)
}

// PartitionCounts reports how many partitions each topic has; a missing
// topic is an error.
func PartitionCounts(ctx context.Context, o Options, topics ...string) (map[string]int, error) {
	meta, err := o.Client().Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s from %s: %w", strings.Join(topics, ", "), strings.Join(o.Brokers, ","), err)
	}
	out := make(map[string]int, len(topics))
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		out[t.Name] = len(t.Partitions)
	}
	for _, t := range topics {
		if out[t] == 0 {
			return nil, fmt.Errorf("topic %s does not exist; create it or set stream.create_topics", t)
		}
	}
	return out, nil
}
