// Package devbroker runs an in-process Kafka-protocol broker (franz-go's
// kfake) on a loopback port, and replays generated workloads into it.
//
// It is what `obolus dev` and the streaming tests use, so the whole
// streaming path runs on one machine with nothing installed. It is not a
// production broker: one node, no replication.
package devbroker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure the broker.
type Options struct {
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// DataDir, when set, keeps topics and committed offsets on disk there, so
	// they survive a restart and large runs do not live in memory.
	DataDir string
	// Partitions is the partition count of topics created without one (default 12).
	Partitions int
	// MaxMessageBytes is the broker's message.max.bytes (default 8 MiB, so
	// that oversized input reaches the consumer, which dead-letters it).
	MaxMessageBytes int
	// MinSessionTimeout is the shortest consumer group session allowed
	// (default 1s; Kafka's is 6s), so tests can fail over quickly.
	MinSessionTimeout time.Duration
	// Topics are created at start with Partitions partitions.
	Topics []string
}

// Broker is a running in-process broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// Start starts a broker on 127.0.0.1.
func Start(o Options) (*Broker, error) {
	if o.Partitions <= 0 {
		o.Partitions = 12
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 8 << 20
	}
	if o.MinSessionTimeout <= 0 {
		o.MinSessionTimeout = time.Second
	}
	opts := []kfake.Opt{
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.GroupMinSessionTimeout(o.MinSessionTimeout),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(o.MaxMessageBytes)}),
		kfake.Ports(o.Port),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process kafka broker on 127.0.0.1:%d: %w", o.Port, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("in-process kafka broker: %d listeners, want 1", len(addrs))
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker; with a DataDir its state is flushed to disk.
func (b *Broker) Close() { b.c.Close() }
