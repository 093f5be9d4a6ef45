package scheduler

import (
	"errors"
	"testing"
	"time"
)

func TestFolderHealthCheck(t *testing.T) {
	loaded := t0
	unreadable := errors.New("loading DAGs from dags: lstat dags: no such file or directory")
	tests := []struct {
		name        string
		h           folderHealth
		now         time.Time
		reloadEvery time.Duration
		want        string
	}{
		{"no load yet: the scheduler is starting, which Health says first", folderHealth{}, t0, 2 * time.Second, ""},
		{"loaded just now", folderHealth{loaded: loaded}, t0.Add(2 * time.Second), 2 * time.Second, ""},
		{"a minute without a load is still fine", folderHealth{loaded: loaded}, t0.Add(time.Minute), 2 * time.Second, ""},
		{"past a minute, stuck", folderHealth{loaded: loaded}, t0.Add(61 * time.Second), 2 * time.Second,
			"DAGs folder: no reload has ended for 1m1s, one is due every 2s"},
		{"slow reloads get ten periods", folderHealth{loaded: loaded}, t0.Add(9 * time.Minute), time.Minute, ""},
		{"and no more", folderHealth{loaded: loaded}, t0.Add(11 * time.Minute), time.Minute,
			"DAGs folder: no reload has ended for 11m0s, one is due every 1m0s"},
		{"the last reload failed", folderHealth{loaded: loaded, err: unreadable}, t0.Add(time.Second), 2 * time.Second,
			"DAGs folder: the last reload failed: " + unreadable.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.check(tt.now, tt.reloadEvery)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("check = %q, want %q", got, tt.want)
			}
		})
	}
}
