package sdk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// greeter is a stage: it greets `with.name` and emits the greeting.
type greeter struct{}

func (greeter) Info() sdk.Info {
	return sdk.Info{Name: "greet", Version: "0.1.0", Schema: []byte(`{
		"type": "object",
		"properties": {"name": {"type": "string"}},
		"required": ["name"]
	}`)}
}

func (greeter) Run(ctx context.Context, t *sdk.Task) error {
	var p struct {
		Name string `json:"name"`
	}
	if err := t.Decode(&p); err != nil {
		return err
	}
	t.Logf("greeting %s", p.Name)
	return t.SetOutput("greeting", "hello, "+p.Name)
}

// A Stage's Run is a plain method: a unit test calls it with a Task of its
// own making. (The plugin's main is one line: sdk.Main(greeter{}).)
func Example_testRunDirectly() {
	dir, _ := os.MkdirTemp("", "greet")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "outputs")

	var log strings.Builder
	t := &sdk.Task{
		With: []byte(`{"name": "kiln"}`),
		Env:  []string{"KILN_OUTPUT=" + out},
		Try:  "example/manual__2026-03-01T00:00:00Z/greet#1",
		Log:  &log,
	}
	err := greeter{}.Run(context.Background(), t)
	outputs, _ := os.ReadFile(out)
	fmt.Printf("error: %v\nlog: %soutputs: %s", err, log.String(), outputs)

	t.With = []byte(`{"nmae": "kiln"}`)
	fmt.Println(greeter{}.Run(context.Background(), t))
	// Output:
	// error: <nil>
	// log: greeting kiln
	// outputs: greeting=hello, kiln
	// invalid parameters: unknown field "nmae"
}
