//go:build !linux

package proc

func groupAlive(pgid int) bool { return groupAliveBySignal(pgid) }
