package http

import (
	"encoding/json"
	"testing"

	"github.com/kilnhq/kiln/dag"
)

func TestSchema(t *testing.T) {
	s, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		with string
		ok   bool
	}{
		{`{"url": "http://x"}`, true},
		{`{"url": "http://x", "method": "POST", "headers": {"A": "b"}, "body": "text",
		   "expect_status": [200, 404], "timeout": "5s", "outputs": {"id": "$.id", "a.b-c": "x"}}`, true},
		{`{"url": "http://x", "body": {"a": [1]}}`, true},
		{`{"url": "http://x", "body": [1, 2]}`, true},
		{`{}`, false},
		{`{"url": ""}`, false},
		{`{"url": "http://x", "uri": "y"}`, false},
		{`{"url": "http://x", "body": 3}`, false},
		{`{"url": "http://x", "headers": {"A": 1}}`, false},
		{`{"url": "http://x", "expect_status": []}`, false},
		{`{"url": "http://x", "expect_status": [99]}`, false},
		{`{"url": "http://x", "expect_status": ["200"]}`, false},
		{`{"url": "http://x", "timeout": 30}`, false},
		{`{"url": "http://x", "outputs": {"status": "$.s"}}`, false},
		{`{"url": "http://x", "outputs": {"1x": "$.s"}}`, false},
		{`{"url": "http://x", "outputs": {"x": 1}}`, false},
	}
	for _, tt := range tests {
		var v any
		if err := json.Unmarshal([]byte(tt.with), &v); err != nil {
			t.Fatal(err)
		}
		err := s.Validate(v)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%s) = %v, want ok %v", tt.with, err, tt.ok)
		}
	}
}

func TestInfo(t *testing.T) {
	i := Stage{}.Info()
	if i.Name != Name || i.Sensor || string(i.Schema) != string(Schema) {
		t.Errorf("Info() = %+v", i)
	}
}
