package dag

import "regexp"

// Names a DAG file gives — DAG ids, task ids, queues, pools — end up as
// folder names under the data folder and as tokens of NATS subjects, so
// their rule keeps every one of them a plain word there: letters, digits,
// `_` and `-`, and for DAG ids and pools also dots, but only between such
// characters. `.`, `..`, `.x`, `x.` and `a..b` are refused: they would be
// a path step of their own, a hidden file, or an empty subject token.
var (
	dottedName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	plainName  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// nameRule is the rule of one kind of name.
type nameRule struct {
	re   *regexp.Regexp
	max  int
	what string // the rule, in words, for error messages
}

var (
	dagIDRule  = nameRule{dottedName, 200, PoolNameRule}
	taskIDRule = nameRule{plainName, 200, "1 to 200 of A-Z a-z 0-9 _ -"}
	queueRule  = nameRule{plainName, 64, "1 to 64 of A-Z a-z 0-9 _ -"}
	poolRule   = nameRule{dottedName, 200, PoolNameRule}
)

func (r nameRule) ok(s string) bool { return len(s) <= r.max && r.re.MatchString(s) }

// ValidDAGID reports whether s may be a DAG id.
func ValidDAGID(s string) bool { return dagIDRule.ok(s) }

// ValidTaskID reports whether s may be a task id.
func ValidTaskID(s string) bool { return taskIDRule.ok(s) }

// ValidPoolName reports whether s may name a pool.
func ValidPoolName(s string) bool { return poolRule.ok(s) }

// PoolNameRule says in words which names a pool (or a DAG id) may have.
const PoolNameRule = "1 to 200 of A-Z a-z 0-9 _ - and dots between them"
