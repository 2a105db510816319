package enrich

import "testing"

func TestNormalizeTraceID(t *testing.T) {
	const hex = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, in, want string
	}{
		{"mlflow", "tr-" + hex, hex},
		{"mlflow upper", "tr-4BF92F3577B34DA6A3CE929D0E0E4736", hex},
		{"mlflow prefix in capitals", "TR-4BF92F3577B34DA6A3CE929D0E0E4736", hex},
		{"uc prefix in capitals", "TRACE:/cat.sch/" + hex, hex},
		{"unity catalog v4", "trace:/main.agents/" + hex, hex},
		{"bare w3c", hex, hex},
		{"traceparent", "00-" + hex + "-00f067aa0ba902b7-01", hex},
		{"traceparent padded", "  00-" + hex + "-00f067aa0ba902b7-00 ", hex},
		{"future version with extra field", "01-" + hex + "-00f067aa0ba902b7-01-extra", hex},
		{"version 00 with extra field is invalid", "00-" + hex + "-00f067aa0ba902b7-01-x", "00-" + hex + "-00f067aa0ba902b7-01-x"},
		{"version ff is invalid", "ff-" + hex + "-00f067aa0ba902b7-01", "ff-" + hex + "-00f067aa0ba902b7-01"},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		{"zero parent id", "00-" + hex + "-0000000000000000-01", "00-" + hex + "-0000000000000000-01"},
		{"short hex stays opaque", "tr-abc", "tr-abc"},
		{"opaque id", "Request-42", "request-42"},
		{"empty", "", ""},
		{"blank", "   ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeTraceID(tt.in); got != tt.want {
				t.Errorf("NormalizeTraceID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzNormalizeTraceID(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("tr-4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add("trace:/a/b")
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeTraceID(s)
		if NormalizeTraceID(n) != n {
			t.Errorf("not idempotent: %q → %q → %q", s, n, NormalizeTraceID(n))
		}
	})
}
