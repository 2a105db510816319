// Package peakrss reads a process's peak resident set (VmHWM) from /proc,
// which benchmarks report instead of rusage: a child's rusage can carry its
// parent's resident set from before the exec.
package peakrss

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Of returns the peak resident set of process pid in bytes; pid 0 is the
// calling process. It fails where /proc has no such line (not Linux).
func Of(pid int) (int64, error) {
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	st, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%s/status VmHWM %q: %w", proc, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no VmHWM line", proc)
}
