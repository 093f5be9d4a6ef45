package scheduler_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// cpuUse is CPU time spent by the parts of a benchmark: this process (the
// scheduler, the worker and embedded NATS), the plugin processes it
// started, and the tasks' processes those waited for (the shells).
type cpuUse struct {
	kiln, plugins, tasks time.Duration
}

// clockTick is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuNow reads the CPU time used so far; ok is false where /proc cannot
// tell.
func cpuNow() (u cpuUse, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return u, false
	}
	u.kiln = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return u, false
	}
	self := strconv.Itoa(os.Getpid())
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ... utime stime cutime cstime ...":
		// fields after comm, from state, are numbered from 3.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:])
		if len(f) < 15 || string(f[1]) != self {
			continue
		}
		ticks := func(n int) time.Duration {
			v, _ := strconv.ParseInt(string(f[n-3]), 10, 64)
			return time.Duration(v) * clockTick
		}
		u.plugins += ticks(14) + ticks(15)
		u.tasks += ticks(16) + ticks(17)
	}
	return u, true
}

func (u cpuUse) sub(v cpuUse) cpuUse {
	return cpuUse{u.kiln - v.kiln, u.plugins - v.plugins, u.tasks - v.tasks}
}
