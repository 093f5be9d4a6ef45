package dag

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// The task cache (docs/dag-format.md#task-cache): whether a task's result
// may be reused, for how long, and what else its key holds.

var cacheKeys = []string{"ttl", "key"}

// cache decodes the task's `cache` into t.Cache; sc is the scope of the
// task's templates, which its key is compiled in. inherited says the key
// comes from `defaults`, which a sensor task does not take.
func (d *decoder) cache(t *Task, f map[string]pair, sc *scope, inherited bool) {
	p, ok := f["cache"]
	if !ok {
		return
	}
	c := &CacheConfig{}
	switch {
	case p.val.kind == scalarNode && p.val.val == false:
		return
	case p.val.kind == scalarNode && p.val.val == true:
	case p.val.kind == mapNode:
		cf := d.fields(p.val, cacheKeys, "cache")
		if tp, ok := cf["ttl"]; ok {
			var ok bool
			if c.TTL, ok = d.parseDuration(tp, ParseDays, "12h or 7d"); ok && c.TTL == 0 {
				d.errAt(tp.val, "cache ttl must be above zero: leave ttl out for a result reused however old")
			}
		}
		if kp, ok := cf["key"]; ok {
			if s, ok := d.str(kp); ok {
				c.Key = d.template(kp.val, s, sc)
			}
		}
	default:
		d.errAt(p.val, "cache must be true, false or a mapping such as {ttl: 7d, key: \"{{ .ds }}\"}, got %s", p.val.describe())
		return
	}
	if t.Sensor != nil {
		if !inherited {
			d.errAt(p.key, "cache applies to tasks that do work, and plugin %q is a sensor: what it waits for is outside, so a cached result would be stale", t.Plugin)
		}
		return
	}
	t.Cache = c
}

// ParseDays parses a Go duration that may start with a number of whole
// days: 7d, 1d12h, 90m. The cache's ttl takes days, and so do the
// artifact retention's flags and the API's older_than
// (docs/artifacts.md#retention), as only they run to weeks.
func ParseDays(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 64)
	if err != nil {
		return 0, errors.New("want a whole number of days before d")
	}
	const day = 24 * time.Hour
	if n > math.MaxInt64/uint64(day) {
		return 0, errors.New("too long")
	}
	v := time.Duration(n) * day
	if rest == "" {
		return v, nil
	}
	r, err := time.ParseDuration(rest)
	if err != nil {
		return 0, err
	}
	if r < 0 {
		return 0, errors.New("a negative part after the days")
	}
	if r > math.MaxInt64-v {
		return 0, errors.New("too long")
	}
	return v + r, nil
}
