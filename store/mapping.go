package store

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Task mapping (docs/dag-format.md#mapping) gives a mapped task one task
// instance per element of its list, its map index, and keeps one more
// instance, index -1, that stands for the task as a whole. Each instance
// is stored under its instance key: the task id, then "[index]" for a
// mapped one. Task ids cannot contain '[', so the key is unambiguous, and
// an unmapped task's key is its id, as it was before mapping existed.

// NoMapIndex is the map index of an unmapped task's instance and of the
// instance that stands for a mapped task as a whole.
const NoMapIndex = -1

// InstanceKey is the key of a task instance: the task id, with "[i]" for
// map index i.
func InstanceKey(taskID string, mapIndex int) string {
	if mapIndex < 0 {
		return taskID
	}
	return taskID + "[" + strconv.Itoa(mapIndex) + "]"
}

// SplitInstanceKey is the inverse of InstanceKey. ok is false when the key
// has a malformed index.
func SplitInstanceKey(k string) (taskID string, mapIndex int, ok bool) {
	i := strings.IndexByte(k, '[')
	if i < 0 {
		return k, NoMapIndex, true
	}
	if !strings.HasSuffix(k, "]") {
		return "", 0, false
	}
	n, err := strconv.Atoi(k[i+1 : len(k)-1])
	if err != nil || n < 0 || strconv.Itoa(n) != k[i+1:len(k)-1] {
		return "", 0, false
	}
	return k[:i], n, true
}

// isMappedKey reports whether a stored task instance key (the task part of
// a store key) is that of a mapped instance.
func isMappedKey(k []byte) bool {
	for _, c := range k {
		if c == '[' {
			return true
		}
	}
	return false
}

// Key is the instance key of ti.
func (ti *TaskInstance) Key() string { return InstanceKey(ti.TaskID, ti.MapIndex) }

// Key is the instance key of the try's task instance.
func (t *Try) Key() string { return InstanceKey(t.TaskID, t.MapIndex) }

// UnmarshalJSON decodes a task instance; one stored before mapping has no
// map_index and is unmapped.
func (ti *TaskInstance) UnmarshalJSON(b []byte) error {
	type plain TaskInstance
	p := plain{MapIndex: NoMapIndex}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*ti = TaskInstance(p)
	return nil
}

// UnmarshalJSON decodes a try, as TaskInstance.UnmarshalJSON does.
func (t *Try) UnmarshalJSON(b []byte) error {
	type plain Try
	p := plain{MapIndex: NoMapIndex}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*t = Try(p)
	return nil
}
