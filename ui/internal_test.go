package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/store"
)

func TestCompletePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"abc\n", 4},
		{"abc\r", 3},      // may start a \r\n
		{"ab\xc3", 2},     // first byte of é
		{"ab\xc3\xa9", 4}, // all of é
		{"ab\xe2\x82", 2}, // two bytes of €
		{"ab\xe2\x82\xac", 5},
		{"ab\xf0\x9f\x98", 2}, // three bytes of an emoji
		{"ab\xff", 3},         // invalid, not partial: sent as is
		{"\r", 0},
	}
	for _, tt := range tests {
		if got := completePrefix([]byte(tt.in)); got != tt.want {
			t.Errorf("completePrefix(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeNumbers(t *testing.T) {
	in := map[string]any{
		"i": json.Number("3"), "f": json.Number("0.5"), "e": json.Number("1e3"), "big": json.Number("9007199254740993"),
		"list": []any{json.Number("1"), "x"}, "obj": map[string]any{"n": json.Number("-2")},
	}
	want := map[string]any{
		"i": int64(3), "f": 0.5, "e": 1000.0, "big": int64(9007199254740993),
		"list": []any{int64(1), "x"}, "obj": map[string]any{"n": int64(-2)},
	}
	if diff := cmp.Diff(want, dag.NormalizeNumbers(in)); diff != "" {
		t.Errorf("NormalizeNumbers (-want +got):\n%s", diff)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("DAG x: %w", scheduler.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("getting run: %w", store.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("%w: bad param", scheduler.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("run exists: %w", scheduler.ErrConflict), http.StatusConflict},
		{fmt.Errorf("commit: %w", store.ErrConflict), http.StatusConflict},
		{badRequest("limit: bad"), http.StatusBadRequest},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got, msg := classify(tt.err); got != tt.want || msg != tt.err.Error() {
			t.Errorf("classify(%v) = %d %q, want %d and the error's text", tt.err, got, msg, tt.want)
		}
	}
}
