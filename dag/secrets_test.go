package dag_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
)

// TestSecretsInEnv: env values may refer to secrets; the DAG lists the
// names, and rendering sees the values given.
func TestSecretsInEnv(t *testing.T) {
	g, err := dag.Parse("s.yaml", []byte(`
id: s
env: {TOKEN: "{{ .secrets.api_token }}"}
tasks:
  - id: load
    plugin: shell
    with: {command: "load"}
    env: {DSN: "postgres://etl:{{ .secrets.db_password }}@db/{{ .ds }}"}
`), builtin)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api_token", "db_password"}; !slices.Equal(g.Secrets, want) {
		t.Errorf("Secrets = %v, want %v", g.Secrets, want)
	}
	v := dag.Values{LogicalDate: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Secrets: map[string]string{"db_password": "s3cret"}}
	got, err := g.Task("load").Env[0].Value.Render(v.Data(time.UTC))
	if err != nil || got != "postgres://etl:s3cret@db/2026-03-01" {
		t.Errorf("DSN = %q, %v", got, err)
	}
}
