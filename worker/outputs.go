package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// MaxOutputBytes is the most a task may write to $KILN_OUTPUT (docs/dag-format.md#outputs).
const MaxOutputBytes = 64 << 10

// readOutputs reads and parses the outputs a task left in the file at
// path. A missing or empty file means no outputs.
func readOutputs(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading $KILN_OUTPUT: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxOutputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading $KILN_OUTPUT: %w", err)
	}
	if len(data) > MaxOutputBytes {
		size := "more than " + fmt.Sprint(MaxOutputBytes)
		if st, err := f.Stat(); err == nil {
			size = fmt.Sprint(st.Size())
		}
		return nil, fmt.Errorf("$KILN_OUTPUT holds %s bytes; a task's outputs are limited to %d bytes", size, MaxOutputBytes)
	}
	return parseOutputs(data)
}

// parseOutputs parses a task's outputs: one JSON object, or KEY=VALUE
// lines. In the lines form, blank lines and lines starting with # are
// skipped, a key may not hold spaces, and a value is the rest of its line,
// kept as it is; a repeated key keeps its last value.
func parseOutputs(data []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		var out map[string]any
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("invalid outputs in $KILN_OUTPUT: not a valid JSON object: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, errors.New("invalid outputs in $KILN_OUTPUT: more than one JSON value")
		}
		return out, nil
	}
	out := map[string]any{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("invalid outputs in $KILN_OUTPUT: line %d: want KEY=VALUE or one JSON object, got %q", i+1, clip(line, 60))
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
