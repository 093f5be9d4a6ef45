// Package dag loads Kiln DAG files: YAML parsed with a position for every
// node, validated as docs/dag-format.md describes, and compiled into
// immutable, content-hashed DAG values ready for the scheduler.
//
// Loading never stops at the first problem: every error in a file is
// collected as an [Error] that points at the offending key or value
// (FILE:LINE:COL). Templates (text/template) and `when` expressions
// (expr-lang) are compiled at load time, so a DAG that loads cleanly only
// fails at run time on values that were unknowable before the run.
//
// The package is pure: it reads files and nothing else. Timetables live in
// the timetable sub-package; plugin parameter schemas reach the loader
// through the [Catalog] interface so that plugins can register their own.
package dag
