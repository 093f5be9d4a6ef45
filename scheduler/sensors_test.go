package scheduler

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

func (h *harness) pokeResult(a *wire.Assignment, ev wire.Event) []*wire.Assignment {
	ev.TryKey, ev.Kind, ev.Time = a.TryKey, wire.EventFinished, h.clock.Now()
	return h.turn(func() { h.s.applyEvent(eventMsg{ev: ev, worker: "w1"}) })
}

func TestSensorRescheduleFreesTheSlotBetweenPokes(t *testing.T) {
	h := newHarness(t, `
id: sensing
tasks:
  - {id: wait, plugin: fake_sensor, poke_interval: 10s, sensor_timeout: 1m, retries: 2}
  - {id: after, plugin: shell, with: {command: "x"}, depends_on: [wait]}
`)
	r, as := h.trigger("sensing", nil)
	a := as[0]
	if a.Sensor == nil || !a.Sensor.Reschedule || a.Poke != 1 || a.Try != 1 || !a.Sensor.Deadline.Equal(t0.Add(time.Minute)) {
		t.Fatalf("first poke = %+v (sensor %+v)", a, a.Sensor)
	}
	h.event(a, wire.EventStarted, true, nil)
	h.s.logs.note(a.TryKey, "poke 1 output")
	if next := h.pokeResult(a, wire.Event{PokeAgain: true}); len(next) != 0 {
		t.Fatalf("poked again at once: %v", next)
	}
	ti := h.s.active[runKey{"sensing", r.RunID}].tis["wait"]
	if ti.State != store.TaskUpForReschedule || !ti.NotBefore.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("after poke 1: %s until %v", ti.State, ti.NotBefore)
	}
	h.advance(10 * time.Second)
	as = h.turn(nil)
	if len(as) != 1 || as[0].Try != 1 || as[0].Poke != 2 || as[0].LogOffset == 0 || as[0].MsgID() == a.MsgID() {
		t.Fatalf("second poke = %+v, want try 1 poke 2 appending to the log", as)
	}
	next := h.run(as[0], true, nil)
	if len(next) != 1 || next[0].TaskID != "after" {
		t.Fatalf("after the condition: %v", next)
	}
	tries, _ := h.s.cfg.Store.Tries("sensing", r.RunID, "wait")
	if len(tries) != 1 || tries[0].State != store.TaskSuccess {
		t.Errorf("tries = %+v, want one successful try for both pokes", tries)
	}
}

func TestSensorTimeoutFailsOrSoftFails(t *testing.T) {
	for _, soft := range []bool{false, true} {
		h := newHarness(t, `
id: sensing
tasks:
  - {id: wait, plugin: fake_sensor, poke_interval: 20s, sensor_timeout: 30s, retries: 3, soft_fail: `+map[bool]string{true: "true", false: "false"}[soft]+`}
`)
		r, as := h.trigger("sensing", nil)
		h.event(as[0], wire.EventStarted, true, nil)
		h.pokeResult(as[0], wire.Event{PokeAgain: true})
		h.advance(20 * time.Second)
		as = h.turn(nil)
		h.pokeResult(as[0], wire.Event{PokeAgain: true})
		h.advance(20 * time.Second) // 40s since the first poke: past the 30s timeout
		if as := h.turn(nil); len(as) != 0 {
			t.Fatalf("poked after the timeout: %v", as)
		}
		want := store.TaskFailed
		if soft {
			want = store.TaskSkipped
		}
		ti, _ := h.s.cfg.Store.GetTaskInstance("sensing", r.RunID, "wait")
		if ti.State != want || ti.TryNumber != 1 || !strings.Contains(ti.Error, "sensor timed out") {
			t.Errorf("soft_fail=%v: %s try %d %q, want %s without retries", soft, ti.State, ti.TryNumber, ti.Error, want)
		}
	}
}

func TestSensorPokeModeTimeout(t *testing.T) {
	h := newHarness(t, `
id: poking
tasks: [{id: wait, plugin: fake_sensor, mode: poke, poke_interval: 1s, sensor_timeout: 5s}]
`)
	r, as := h.trigger("poking", nil)
	if as[0].Sensor == nil || as[0].Sensor.Reschedule {
		t.Fatalf("poke mode assignment: %+v", as[0].Sensor)
	}
	h.event(as[0], wire.EventStarted, true, nil)
	h.pokeResult(as[0], wire.Event{SensorTimeout: true, Error: "sensor timed out"})
	if ti, _ := h.s.cfg.Store.GetTaskInstance("poking", r.RunID, "wait"); ti.State != store.TaskFailed {
		t.Errorf("state %s, want failed", ti.State)
	}
}

func TestDAGSensorWaitsForAnotherDAG(t *testing.T) {
	h := newHarness(t, `
id: upstream
tasks: [{id: load, plugin: shell, with: {command: "x"}}]
`, `
id: downstream
tasks:
  - {id: wait, plugin: dag_sensor, with: {dag: upstream, task: load}, poke_interval: 5s, sensor_timeout: 1h}
  - {id: use, plugin: shell, with: {command: "x"}, depends_on: [wait]}
`)
	ld := t0.Add(-time.Hour)
	var down, up *store.Run
	as := h.turn(func() { down, _ = h.s.trigger("downstream", TriggerRequest{LogicalDate: &ld}, h.clock.Now()) })
	if len(as) != 0 {
		t.Fatalf("dag_sensor went to a worker: %v", as)
	}
	if got := h.states("downstream", down.RunID)["wait"]; got != store.TaskUpForReschedule {
		t.Fatalf("sensor = %s, want up_for_reschedule", got)
	}
	as = h.turn(func() { up, _ = h.s.trigger("upstream", TriggerRequest{LogicalDate: &ld}, h.clock.Now()) })
	h.run(as[0], true, nil)
	h.advance(5 * time.Second)
	as = h.turn(nil)
	if len(as) != 1 || as[0].TaskID != "use" {
		t.Fatalf("after upstream succeeded: %v, want use", as)
	}
	log, _ := os.ReadFile(h.s.LogPath(wire.TryKey{DAGID: "downstream", RunID: down.RunID, TaskID: "wait", Try: 1}))
	if !strings.Contains(string(log), "poke 1: run of DAG upstream for 2026-03-10T11:00:00Z does not exist yet") || !strings.Contains(string(log), "poke 2: task load of run of DAG upstream") || !strings.Contains(string(log), "is success") {
		t.Errorf("sensor log = %q", log)
	}
	_ = up
}
