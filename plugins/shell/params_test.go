package shell

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeParams(t *testing.T) {
	tests := []struct {
		name    string
		with    string
		reqEnv  []string
		reqDir  string
		wantEnv []string
		wantDir string
		wantErr string
	}{
		{name: "defaults", with: `{"command":"true"}`, reqEnv: []string{"A=1"}, reqDir: "/w",
			wantEnv: []string{"A=1"}, wantDir: "/w"},
		{name: "env after request env, sorted", with: `{"command":"true","env":{"B":"x","A":2,"C":false}}`,
			reqEnv: []string{"A=1"}, wantEnv: []string{"A=1", "A=2", "B=x", "C=false"}},
		{name: "relative workdir", with: `{"command":"true","workdir":"sub/dir"}`, reqDir: "/w",
			wantEnv: []string{}, wantDir: "/w/sub/dir"},
		{name: "absolute workdir", with: `{"command":"true","workdir":"/abs"}`, reqDir: "/w",
			wantEnv: []string{}, wantDir: "/abs"},
		{name: "large number kept exact", with: `{"command":"true","env":{"N":12345678901234567890}}`,
			wantEnv: []string{"N=12345678901234567890"}},
		{name: "empty", with: ``, wantErr: "command is required"},
		{name: "not an object", with: `[1]`, wantErr: "cannot unmarshal"},
		{name: "unknown key", with: `{"command":"x","cmd":"y"}`, wantErr: `unknown field "cmd"`},
		{name: "bad env value", with: `{"command":"x","env":{"A":[1]}}`, wantErr: "env.A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodeParams([]byte(tt.with))
			var env []string
			if err == nil {
				env, err = p.env(tt.reqEnv)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Shell != "/bin/sh" {
				t.Errorf("shell %q, want /bin/sh", p.Shell)
			}
			if diff := cmp.Diff(tt.wantEnv, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if got := p.dir(tt.reqDir); got != tt.wantDir {
				t.Errorf("dir %q, want %q", got, tt.wantDir)
			}
		})
	}
}
