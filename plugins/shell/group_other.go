//go:build !linux

package shell

func groupAlive(pgid int) bool { return groupAliveBySignal(pgid) }
