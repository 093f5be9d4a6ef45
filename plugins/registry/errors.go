package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// A discovery error ends up in `kiln plugins list` and, for a plugin a DAG
// names, in a FILE:LINE:COL: message: these shorten what the libraries say
// to what helps the plugin's author.

// handshakeNote starts go-plugin's long note on a process that did not
// answer its handshake on stdout.
const handshakeNote = "Unrecognized remote plugin message: "

// shortLaunchError replaces go-plugin's note on a failed handshake (which
// lists the file's mode, owner and architecture) by what the process did,
// and keeps the host's report of the process's stderr.
func shortLaunchError(msg string) string {
	i := strings.Index(msg, handshakeNote)
	if i < 0 {
		return msg
	}
	line, notes, ok := strings.Cut(msg[i+len(handshakeNote):], "\n")
	if !ok {
		return msg
	}
	what := "printed nothing on stdout"
	if line != "" {
		what = fmt.Sprintf("printed %q on stdout", line)
	}
	s := msg[:i] + "no go-plugin handshake: the process " + what
	if _, stderr, ok := strings.Cut(notes, "\n: "); ok {
		s += "; its stderr: " + stderr
	}
	return s
}

var printer = message.NewPrinter(language.English)

// schemaError says where a schema breaks the JSON Schema metaschema,
// without the compiler's name for the document.
func schemaError(err error) string {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if !errors.As(err, &sve) || !errors.As(sve.Err, &ve) {
		return err.Error()
	}
	var leaves []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, fmt.Sprintf("at %s: %s", "/"+strings.Join(e.InstanceLocation, "/"), e.ErrorKind.LocalizedString(printer)))
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(leaves, "; ")
}
