// Package sdk is how to write a Kiln stage plugin in Go. A plugin author
// writes one type that implements Stage, and a main of one line:
//
//	type wordcount struct{}
//
//	func (wordcount) Info() sdk.Info {
//		return sdk.Info{Name: "wordcount", Version: "1.0.0", Schema: schema}
//	}
//
//	func (wordcount) Run(ctx context.Context, t *sdk.Task) error {
//		var p struct{ Path string `json:"path"` }
//		if err := t.Decode(&p); err != nil {
//			return err
//		}
//		t.Logf("counting %s", p.Path)
//		...
//		return t.SetOutput("words", strconv.Itoa(n))
//	}
//
//	func main() { sdk.Main(wordcount{}) }
//
// Built as an executable named kiln-plugin-NAME in kiln's plugins folder
// (--plugins DIR) or on PATH, the plugin is started by a worker the first
// time a task needs it, and reused for every later task: Run may be called
// for several tasks at once, each with its own Task.
//
// Main serves the stage over the Stage protocol (plugins/proto) through
// hashicorp/go-plugin. Run's error decides the try's outcome: nil is
// success; an error wrapping ErrNotYet tells the worker that a sensor's
// condition is not met yet; ExitCode fails the try with an exit code; any
// other error fails it with its message. The ctx passed to Run is cancelled
// when the try is cancelled or times out: Run must then stop its work and
// return.
//
// A panic in Run is not recovered: it crashes the plugin process, after the
// log written so far has been sent, and the worker fails the tries the
// process was running with the panic as their error, then starts a new
// process for the next task.
//
// NewServer turns a Stage into the gRPC service without serving it, for
// tests and for plugins that kiln serves itself. docs/plugins.md walks
// through writing, testing and installing a plugin.
package sdk
