package dag_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/dag"
)

// benchDAG writes a DAG of n tasks shaped like real pipelines: a schedule
// in a timezone, params, env, defaults, fan-in dependencies, templates in
// every command and a `when` on some tasks.
func benchDAG(i, n int) string { return benchDAGWhen(i, n, false) }

// benchDAGWhen is benchDAG with, if distinct, a `when` of its own on each
// task that has one, where benchDAG repeats the same condition.
func benchDAGWhen(i, n int, distinct bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `id: pipeline_%04d
description: Generated pipeline %d for the loading benchmark
schedule: "%d 3 * * *"
timezone: Europe/Zurich
start_date: 2026-01-01
tags: [bench, team%d]
params:
  region: {type: string, enum: [eu, us], default: eu}
  frac: {type: number, default: 0.5, minimum: 0, maximum: 1}
env:
  OUT_DIR: "data/{{ .ds_nodash }}"
defaults:
  plugin: shell
  retries: 2
  retry_delay: 30s
tasks:
`, i, i, i%60, i%7)
	for t := range n {
		fmt.Fprintf(&b, "  - id: step_%02d\n", t)
		if t > 0 {
			fmt.Fprintf(&b, "    depends_on: [step_%02d", t-1)
			if t > 2 {
				fmt.Fprintf(&b, ", step_%02d", t-3)
			}
			b.WriteString("]\n")
		}
		// Commands differ between files too, so no cache keyed by a
		// string could make the load cheaper than it is.
		fmt.Fprintf(&b, "    with:\n      command: python3 -m jobs.p%d.step%d --date {{ .ds }} --region {{ .params.region }} --frac {{ .params.frac }}\n", i, t)
		if t%5 == 4 {
			if distinct {
				fmt.Fprintf(&b, "    when: params.region == \"eu\" && params.frac > 0.%d%02d\n", i, t)
			} else {
				b.WriteString("    when: params.region == \"eu\"\n")
			}
			b.WriteString("    timeout: 1h\n")
		}
	}
	return b.String()
}

func benchFolder(b *testing.B, files, tasks int) string {
	return benchFolderWhen(b, files, tasks, false)
}

func benchFolderWhen(b *testing.B, files, tasks int, distinct bool) string {
	dir := b.TempDir()
	for i := range files {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("team%d", i%10), fmt.Sprintf("pipeline_%04d.yaml", i)), benchDAGWhen(i, tasks, distinct))
	}
	return dir
}

// BenchmarkLoadFolder loads and validates 1,000 DAG files of 20 tasks each
// from scratch (target: under 0.25 s per op on 2 cores).
func BenchmarkLoadFolder(b *testing.B) {
	dir := benchFolder(b, 1000, 20)
	b.ResetTimer()
	for b.Loop() {
		s, err := dag.NewFolder(builtin, dir).Load(context.Background())
		if err != nil || len(s.DAGs) != 1000 || len(s.ImportErrors) != 0 {
			b.Fatalf("load: %v, %d DAGs, errors %v", err, len(s.DAGs), s.ImportErrors)
		}
	}
}

// BenchmarkLoadFolderDistinct is BenchmarkLoadFolder with every `when`
// distinct, as every template already is: a cold load no cache helps.
func BenchmarkLoadFolderDistinct(b *testing.B) {
	dir := benchFolderWhen(b, 1000, 20, true)
	b.ResetTimer()
	for b.Loop() {
		s, err := dag.NewFolder(builtin, dir).Load(context.Background())
		if err != nil || len(s.DAGs) != 1000 || len(s.ImportErrors) != 0 {
			b.Fatalf("load: %v, %d DAGs, errors %v", err, len(s.DAGs), s.ImportErrors)
		}
	}
}

// BenchmarkReloadOneChanged re-loads the same folder after one file
// changed (target: under 20 ms per op).
func BenchmarkReloadOneChanged(b *testing.B) {
	dir := benchFolder(b, 1000, 20)
	f := dag.NewFolder(builtin, dir)
	if _, err := f.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "team3", "pipeline_0003.yaml")
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		touch(b, path, benchDAG(3, 20)+fmt.Sprintf("# edit %d\n", i))
		b.StartTimer()
		s, err := f.Load(context.Background())
		if err != nil || s.Parsed != 1 {
			b.Fatalf("reload: %v, parsed %d", err, s.Parsed)
		}
	}
}

// BenchmarkParse is the cost of one 20-task DAG file, on one core.
func BenchmarkParse(b *testing.B) {
	src := []byte(benchDAG(1, 20))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := dag.Parse("bench.yaml", src, builtin); err != nil {
			b.Fatal(err)
		}
	}
}
