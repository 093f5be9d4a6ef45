package scheduler

import (
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

func TestEvalTrigger(t *testing.T) {
	const (
		S  = store.TaskSuccess
		F  = store.TaskFailed
		UF = store.TaskUpstreamFailed
		K  = store.TaskSkipped
		R  = store.TaskRunning
		Q  = store.TaskQueued
		N  = store.TaskNone
	)
	type ts = []store.TaskState
	tests := []struct {
		rule dag.TriggerRule
		up   ts
		want verdict
	}{
		{dag.AllSuccess, ts{}, ready},
		{dag.AllSuccess, ts{S, S}, ready},
		{dag.AllSuccess, ts{S, R}, wait},
		{dag.AllSuccess, ts{F, R}, upstreamFailed},
		{dag.AllSuccess, ts{UF, S}, upstreamFailed},
		{dag.AllSuccess, ts{K, S}, skip},
		{dag.AllSuccess, ts{K, R}, skip},

		{dag.AllFailed, ts{F, UF}, ready},
		{dag.AllFailed, ts{F, R}, wait},
		{dag.AllFailed, ts{F, S}, skip},
		{dag.AllFailed, ts{K, F}, skip},

		{dag.AllDone, ts{S, F, K, UF}, ready},
		{dag.AllDone, ts{S, R}, wait},

		{dag.AllDoneMinOneSuccess, ts{S, F}, ready},
		{dag.AllDoneMinOneSuccess, ts{S, R}, wait},
		{dag.AllDoneMinOneSuccess, ts{F, K}, upstreamFailed},
		{dag.AllDoneMinOneSuccess, ts{K, K}, skip},

		{dag.AllSkipped, ts{K, K}, ready},
		{dag.AllSkipped, ts{K, R}, wait},
		{dag.AllSkipped, ts{K, S}, skip},
		{dag.AllSkipped, ts{F, N}, skip},

		{dag.OneSuccess, ts{S, R}, ready},
		{dag.OneSuccess, ts{F, R}, wait},
		{dag.OneSuccess, ts{F, K}, upstreamFailed},
		{dag.OneSuccess, ts{K, K}, skip},

		{dag.OneFailed, ts{F, R}, ready},
		{dag.OneFailed, ts{UF, Q}, ready},
		{dag.OneFailed, ts{S, R}, wait},
		{dag.OneFailed, ts{S, K}, skip},

		{dag.OneDone, ts{S, R}, ready},
		{dag.OneDone, ts{F, R}, ready},
		{dag.OneDone, ts{K, R}, wait},
		{dag.OneDone, ts{K, K}, skip},

		{dag.NoneFailed, ts{S, K}, ready},
		{dag.NoneFailed, ts{S, R}, wait},
		{dag.NoneFailed, ts{UF, R}, upstreamFailed},

		{dag.NoneFailedMinOneSuccess, ts{S, K}, ready},
		{dag.NoneFailedMinOneSuccess, ts{K, K}, skip},
		{dag.NoneFailedMinOneSuccess, ts{K, R}, wait},
		{dag.NoneFailedMinOneSuccess, ts{F, S}, upstreamFailed},

		{dag.NoneSkipped, ts{S, F}, ready},
		{dag.NoneSkipped, ts{S, R}, wait},
		{dag.NoneSkipped, ts{K, R}, skip},

		{dag.Always, ts{R, N}, ready},
		{dag.Always, ts{F}, ready},
	}
	for _, tt := range tests {
		if got := evalTrigger(tt.rule, tt.up); got != tt.want {
			t.Errorf("evalTrigger(%s, %v) = %v, want %v", tt.rule, tt.up, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		delay, max time.Duration
		expo       bool
		try        int
		want       time.Duration
	}{
		{time.Minute, 0, false, 1, time.Minute},
		{time.Minute, 0, false, 5, time.Minute},
		{time.Minute, 0, true, 1, time.Minute},
		{time.Minute, 0, true, 2, 2 * time.Minute},
		{time.Minute, 0, true, 4, 8 * time.Minute},
		{time.Minute, 5 * time.Minute, true, 4, 5 * time.Minute},
		{time.Hour, 0, true, 60, 24 * time.Hour},
	}
	for _, tt := range tests {
		task := &dag.Task{RetryDelay: tt.delay, MaxRetryDelay: tt.max, RetryExponentialBackoff: tt.expo}
		if got := retryDelay(task, tt.try); got != tt.want {
			t.Errorf("retryDelay(%v, max %v, expo %v, try %d) = %v, want %v", tt.delay, tt.max, tt.expo, tt.try, got, tt.want)
		}
	}
}
