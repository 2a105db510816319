package stream

import (
	"encoding/hex"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		rec  Record
	}{
		{"usage", Record{Kind: KindUsage, SourceTime: at.Add(time.Second), Source: SourceID(0, 3), SourceOffset: 1 << 40, Stamp: at.Truncate(time.Millisecond), Usage: schemas.UsageEvent{
			InvocationID: "inv-1", RequestID: "req-1", AccountID: "acc", WorkspaceID: "ws", SchemaVersion: 1,
			EventTime: at, EndpointID: "ep", EndpointName: "databricks-gpt",
			DestinationName: "system.ai.gpt", DestinationModel: "gpt-5", Requester: "sp-1",
			RequestTags: map[string]string{"trace_id": "tr-abc", "ünï": "cødé"}, InputTokens: 100, OutputTokens: 20, TotalTokens: 120,
			TokenDetails: schemas.TokenDetails{CacheReadInputTokens: 7, CacheCreationInputTokens: 3, OutputReasoningTokens: 1},
			StatusCode:   200, LatencyMS: 812, Source: schemas.SourceAIGateway,
		}}},
		{"usage with nothing optional", Record{Kind: KindUsage, Usage: schemas.UsageEvent{InvocationID: "i", EventTime: at, Requester: "sp", StatusCode: -1, InputTokens: -5}}},
		{"agent", Record{Kind: KindAgent, SourceTime: at, Agent: schemas.AgentRequest{
			AgentRequestID: "ar", TraceID: "tr-1", ClientRequestID: "cr", EndUser: "ana@example.com", Session: "s",
			AgentEndpoint: "bot", ServicePrincipal: "sp", StartTime: at, DurationMS: 5000, Status: "OK", Source: schemas.SourceTrace,
		}}},
		{"progress", Record{Kind: KindProgress, Progress: Progress{Source: SourceID(1, 7), Sources: 24, Time: at}}},
		{"marker", Record{Kind: KindMarker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord(nil, &tt.rec)
			got := Record{Offset: 42}
			if err := DecodeRecord(b, &got); err != nil {
				t.Fatal(err)
			}
			want := tt.rec
			want.Offset = 42
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestCodecRejectsCorruptRecords(t *testing.T) {
	good := AppendRecord(nil, &Record{Kind: KindUsage, Usage: schemas.UsageEvent{InvocationID: "inv", Requester: "sp",
		EventTime: time.Unix(1, 0), RequestTags: map[string]string{"k": "v"}}})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{codecVersion}},
		{"future version", append([]byte{codecVersion + 1}, good[1:]...)},
		{"unknown kind", append([]byte{codecVersion, 'z'}, good[2:]...)},
		{"truncated", good[:len(good)/2]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"huge string length", []byte{codecVersion, byte(KindAgent), 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"varint overflow", []byte{codecVersion, byte(KindMarker), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			err := DecodeRecord(tt.b, &r)
			if !errors.Is(err, ErrCodec) {
				t.Fatalf("DecodeRecord = %v, want an ErrCodec error", err)
			}
		})
	}
}

func TestCheckpointString(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 1, time.UTC).UnixNano()
	ms := at / 1e6
	tests := []Checkpoint{
		{},
		{Resume: 10, Snapshot: 12, Next: 20},
		{Resume: 5, Snapshot: 5, Next: 5, Watermark: at, MaxSeen: noWM, Position: math.MinInt64, LastData: math.MinInt64},
		{Resume: 5, Snapshot: 7, Next: 9, Watermark: at, MaxSeen: at - 7, Position: ms, LastData: ms - 3, Armed: true, NumSources: 3,
			Sources: []SourceState{{Source: SourceID(0, 0), Claim: ms - 3600e3, Applied: 77}, {Source: SourceID(1, 2), Claim: ms + 90, Applied: 1 << 40}}},
	}
	for _, c := range tests {
		got, err := ParseCheckpoint(c.String())
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v; want %+v", c.String(), got, err, c)
		}
	}
	good := Checkpoint{Resume: 5, Snapshot: 7, Next: 9, NumSources: 1, Sources: []SourceState{{Claim: 4, Applied: 2}}}.String()
	for _, bad := range []string{"", "42", "obolus2:1:2:0:AA", "obolus3:", "obolus3:!!", good[:len(good)-2], good + "AA",
		Checkpoint{Resume: 5, Snapshot: 4, Next: 9}.String(), Checkpoint{Resume: -1}.String()} {
		if _, err := ParseCheckpoint(bad); !errors.Is(err, ErrNoCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) error = %v, want ErrNoCheckpoint", bad, err)
		}
	}
}

// A keyed-topic message is read back by another worker, perhaps of another
// version: any bytes decode to a record or an error, never a panic, and a
// record that decodes re-encodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for _, r := range []Record{
		{Kind: KindUsage, Usage: schemas.UsageEvent{InvocationID: "i", EventTime: at, Requester: "sp", RequestTags: map[string]string{"k": "v"}}},
		{Kind: KindAgent, Agent: schemas.AgentRequest{AgentRequestID: "ar", EndUser: "ana", StartTime: at, DurationMS: 5}},
	} {
		f.Add(AppendRecord(nil, &r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := DecodeRecord(b, &r); err != nil {
			return
		}
		var back Record
		if err := DecodeRecord(AppendRecord(nil, &r), &back); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}

// TestCodecReadsV2 decodes a usage record written by the version 2 codec
// (testdata/usage-record-v2.hex), whose extra columns UsageEvent no longer
// has: a keyed topic written before an upgrade must still be read.
func TestCodecReadsV2(t *testing.T) {
	raw, err := os.ReadFile("testdata/usage-record-v2.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := DecodeRecord(b, &got); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)
	want := Record{Kind: KindUsage, SourceTime: at.Add(time.Second), Source: SourceID(0, 3), SourceOffset: 1 << 40,
		Stamp: at.Truncate(time.Millisecond), Usage: schemas.UsageEvent{
			InvocationID: "inv-1", RequestID: "req-1", AccountID: "acc", WorkspaceID: "ws", SchemaVersion: 1,
			EventTime: at, EndpointID: "ep", EndpointName: "databricks-gpt",
			DestinationName: "system.ai.gpt", DestinationModel: "gpt-5", Requester: "sp-1",
			RequestTags: map[string]string{"trace_id": "tr-abc"}, InputTokens: 100, OutputTokens: 20, TotalTokens: 120,
			TokenDetails: schemas.TokenDetails{CacheReadInputTokens: 7, CacheCreationInputTokens: 3, OutputReasoningTokens: 1},
			StatusCode:   200, LatencyMS: 812, Source: schemas.SourceAIGateway,
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v2 record:\n got %+v\nwant %+v", got, want)
	}
}
