package dag

import "sync"

// compileCache maps source text to what it compiles to, for compilations
// that depend on the source alone. It is shared by every load in the
// process, because the same template or `when` is often written in many
// DAG files, and it is safe for concurrent use.
//
// It holds at most max entries and, when full, starts again empty: a miss
// costs one compilation, a bound on memory matters more here than the best
// hit rate, and forgetting entries one at a time costs more than the
// occasional miss it saves when most sources are seen once.
type compileCache[V any] struct {
	max int

	mu sync.Mutex
	m  map[string]V
}

func newCompileCache[V any](max int) *compileCache[V] {
	return &compileCache[V]{max: max, m: make(map[string]V)}
}

func (c *compileCache[V]) get(src string) (V, bool) {
	c.mu.Lock()
	v, ok := c.m[src]
	c.mu.Unlock()
	return v, ok
}

func (c *compileCache[V]) put(src string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[src] = v
}
