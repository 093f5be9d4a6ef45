package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/ui"
)

// addServerCommands adds the top-level commands that talk to a Kiln server
// over its HTTP API: trigger, backfill, backfills, runs, tasks, artifacts,
// cache, pools and workers, and users and tokens (which can open the store
// instead, with --data).
// (The dags subcommands that do are added by addServerDagsCommands.)
func addServerCommands(root *cobra.Command) {
	root.AddCommand(newTriggerCmd(), newBackfillCmd(), newBackfillsCmd(), newRunsCmd(), newTasksCmd(), newPoolsCmd())
	root.AddCommand(newArtifactsCmd(), newCacheCmd(), newDatasetsCmd(), newWorkersCmd())
	root.AddCommand(newLoginCmd(), newLogoutCmd(), newUsersCmd(), newTokensCmd())
}

// defaultServerURL is the server the CLI talks to without --server or
// $KILN_SERVER: the address `kiln standalone` listens on by default.
const defaultServerURL = "http://127.0.0.1:8080"

// requestTimeout bounds one API call; following a log is not bounded.
const requestTimeout = 30 * time.Second

// serverFlags are --server and --token, which every command that talks to
// a server takes.
type serverFlags struct {
	server, token string
}

func (f *serverFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "Kiln server URL (default $KILN_SERVER, else "+defaultServerURL+")")
	cmd.Flags().StringVar(&f.token, "token", "", "API token, sent as a bearer token (default $KILN_TOKEN)")
}

// client returns an API client for the flags. The server is --server,
// else $KILN_SERVER, else the default; the token --token, else
// $KILN_TOKEN, else the one `kiln login` saved for that server.
func (f *serverFlags) client() (*apiClient, error) {
	c, err := newAPIClient(f.server)
	if err != nil {
		return nil, err
	}
	switch {
	case f.token != "":
		c.token, c.tokenFrom = f.token, "--token"
	case os.Getenv("KILN_TOKEN") != "":
		c.token, c.tokenFrom = os.Getenv("KILN_TOKEN"), "$KILN_TOKEN"
	default:
		l, err := loadLogin(c.base)
		if err != nil {
			return nil, &exitError{code: 1, msg: err.Error()}
		}
		if l != nil {
			c.token, c.tokenFrom, c.loginUser = l.Token, "login", l.User
		}
	}
	return c, nil
}

// serverURL is the server of a --server value: itself, else $KILN_SERVER,
// else the default, with http:// when it names no scheme and no trailing
// slash, query or fragment.
func serverURL(flag string) (*url.URL, error) {
	server := flag
	if server == "" {
		server = os.Getenv("KILN_SERVER")
	}
	if server == "" {
		server = defaultServerURL
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server %q: want a URL such as %s", server, defaultServerURL)
	}
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/"), ""
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// newAPIClient returns a client of the server of a --server value, with no
// token.
func newAPIClient(server string) (*apiClient, error) {
	u, err := serverURL(server)
	if err != nil {
		return nil, err
	}
	return &apiClient{
		base: u,
		user: cliUser(),
		http: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: requestTimeout,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		}},
	}, nil
}

// apiClient calls Kiln's HTTP API. Its errors are *exitError values ready
// for the user: exit 1 when the server could not be reached or reported an
// error, 2 when it refused the request as invalid (400).
type apiClient struct {
	base  *url.URL
	token string
	// tokenFrom says where token came from, for the advice of an
	// authentication error: "--token", "$KILN_TOKEN", "login" or "".
	tokenFrom string
	loginUser string // who the saved login is of, with tokenFrom "login"
	user      string // sent as ui.UserHeader: who asks
	http      *http.Client
}

// cliUser is who runs the CLI, as $USER@host, for the server to record
// (a backfill's requested_by).
func cliUser() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return name + "@" + host
	}
	return name
}

// apiPath joins escaped path segments under /api/v1.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do calls the API: in, when not nil, is sent as JSON and the answer is
// decoded into out, when not nil. It returns the answer's header.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, in, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, &exitError{code: 1, msg: fmt.Sprintf("%s %s: the server's answer is not what was expected: %v", method, path, err)}
		}
	}
	return resp.Header, nil
}

// send makes a request and returns the response of a successful one; the
// caller closes its body.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	// The path's segments are escaped already (apiPath), so plain
	// concatenation keeps them as they are.
	target := c.base.String() + path
	if q := query.Encode(); q != "" {
		target += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.user != "" {
		req.Header.Set(ui.UserHeader, c.user)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, c.statusError(resp)
	}
	return resp, nil
}

// transportError explains a request that got no answer.
func (c *apiClient) transportError(ctx context.Context, err error) error {
	server := c.base.String()
	var msg string
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("cannot reach the Kiln server at %s: connection refused. Is it running? Start one with `kiln standalone`, or point --server or $KILN_SERVER at yours", server)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg = fmt.Sprintf("the Kiln server at %s did not answer within %v", server, requestTimeout)
	case errors.Is(ctx.Err(), context.Canceled):
		msg = "interrupted"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg = fmt.Sprintf("cannot reach the Kiln server at %s: %v", server, err)
	}
	return &exitError{code: 1, msg: msg}
}

// statusError turns an error answer into an exitError with the server's
// message.
func (c *apiClient) statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body ui.ErrorBody
	msg := ""
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		msg = body.Error
	} else {
		text := strings.TrimSpace(string(raw))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		msg = fmt.Sprintf("the server at %s answered %s", c.base, resp.Status)
		if text != "" {
			msg += ": " + text
		}
	}
	code := 1
	switch resp.StatusCode {
	case http.StatusBadRequest:
		code = 2
	case http.StatusUnauthorized:
		msg = c.unauthorizedAdvice(msg)
	case http.StatusForbidden:
		if strings.Contains(msg, " needs the ") {
			msg += fmt.Sprintf("; run `kiln login%s` as a user who has that role, or give a token that has it with --token or $KILN_TOKEN", serverArg(c.base))
		}
	}
	return &exitError{code: code, msg: msg, status: resp.StatusCode}
}

// unauthorizedAdvice says, after the server's 401 message, what to run.
func (c *apiClient) unauthorizedAdvice(msg string) string {
	login := fmt.Sprintf("`kiln login%s`", serverArg(c.base))
	switch c.tokenFrom {
	case "":
		if !strings.HasPrefix(msg, "authentication required") {
			return msg // such as a wrong password at login
		}
		return fmt.Sprintf("the server at %s asks who you are: run %s (or give an API token with --token or $KILN_TOKEN; an admin makes one with `kiln tokens create --name NAME --role ROLE`)", c.base, login)
	case "login":
		return fmt.Sprintf("the server at %s refused your login as %s (%s; it ends when the user is deleted or their password changes): run %s again", c.base, c.loginUser, msg, login)
	}
	drop := "leave --token out"
	if c.tokenFrom == "$KILN_TOKEN" {
		drop = "unset KILN_TOKEN"
	}
	return fmt.Sprintf("the server at %s refused the token of %s (%s): give a valid one, or %s and run %s", c.base, c.tokenFrom, msg, drop, login)
}

// printJSONValue prints v as indented JSON: what --json prints.
func printJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer for a table of aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// fmtTime formats a time for a table, "-" when unknown.
func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// fmtDuration formats seconds for a table, "-" when unknown.
func fmtDuration(s *float64) string {
	if s == nil {
		return "-"
	}
	return time.Duration(*s * float64(time.Second)).Round(time.Millisecond).String()
}
