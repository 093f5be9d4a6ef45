package proc

import (
	"bytes"
	"os"
	"strconv"
)

// groupAlive reports whether a live (not zombie) process is in the process
// group. Zombies count as gone: where PID 1 does not reap orphans they stay
// in the group for good, and kill(-pgid, 0) would keep finding them.
func groupAlive(pgid int) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return groupAliveBySignal(pgid)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return groupAliveBySignal(pgid)
	}
	want := []byte(strconv.Itoa(pgid))
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold anything, so
		// read after its last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) >= 3 && bytes.Equal(f[2], want) && f[0][0] != 'Z' && f[0][0] != 'X' {
			return true
		}
	}
	return false
}
