package sdk

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kilnhq/kiln/plugins/serve"
)

// Main serves s to the Kiln worker that started this process, and returns
// when the worker lets the plugin go. A plugin's main is one line:
//
//	func main() { sdk.Main(myStage{}) }
//
// If s's Info is not valid (no Name, or a Schema that is not a JSON
// object), Main prints why on stderr and exits with status 1. Run by a
// person rather than by kiln, it says so and exits with status 1.
func Main(s Stage) {
	srv := NewServer(s).(*server)
	if srv.infoErr != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), srv.infoErr)
		os.Exit(1)
	}
	serve.Serve(srv)
}
