package kilntest

import "fmt"

// FanoutDAG is the DAG "fanout": list writes twelve letters, square is
// mapped over them (docs/dag-format.md#mapping), each instance running
// command, and total runs after square by triggerRule. Twelve, so that
// square[10] comes after square[2] by index only, not by key.
func FanoutDAG(command, triggerRule string) string {
	return fmt.Sprintf(`
id: fanout
tasks:
  - id: list
    plugin: shell
    with: {command: 'echo "files=[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\"]" > "$KILN_OUTPUT"'}
  - id: square
    depends_on: [list]
    map: outputs.list.files
    plugin: shell
    with: {command: %s}
  - id: total
    depends_on: [square]
    trigger_rule: %s
    plugin: shell
    with: {command: echo total}
`, command, triggerRule)
}
