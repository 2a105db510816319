package peakrss

import (
	"os"
	"runtime"
	"testing"
)

func TestOf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	self, err := Of(0)
	if err != nil || self <= 0 {
		t.Fatalf("Of(0) = %d, %v", self, err)
	}
	byPid, err := Of(os.Getpid())
	if err != nil || byPid < self {
		t.Fatalf("Of(own pid) = %d, %v; Of(0) was %d", byPid, err, self)
	}
	if _, err := Of(-1); err == nil {
		t.Error("Of(-1): no error")
	}
}
