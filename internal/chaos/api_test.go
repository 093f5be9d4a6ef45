//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// requestTimeout bounds one request to one server: a server that does not
// answer in that time is taken as down, and the next one is asked.
const requestTimeout = 5 * time.Second

// The API's answers, as much of them as the suite reads (docs/api.md).
type (
	health struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		Version   string `json:"version"`
		Scheduler struct {
			Role   string `json:"role"` // "leader" or "standby"
			Name   string `json:"name"`
			Leader string `json:"leader"`
			LogSeq uint64 `json:"log_seq"`
			Lag    uint64 `json:"lag"`
		} `json:"scheduler"`
	}
	apiRun struct {
		RunID       string    `json:"run_id"`
		State       string    `json:"state"`
		LogicalDate time.Time `json:"logical_date"`
	}
	apiTask struct {
		TaskID    string `json:"task_id"`
		State     string `json:"state"`
		TryNumber int    `json:"try_number"`
		MaxTries  int    `json:"max_tries"`
	}
	apiTry struct {
		TryNumber int        `json:"try_number"`
		State     string     `json:"state"`
		Worker    string     `json:"worker"`
		QueuedAt  *time.Time `json:"queued_at"`
		StartDate *time.Time `json:"start_date"`
		EndDate   *time.Time `json:"end_date"`
		Error     string     `json:"error"`
	}
	apiWorker struct {
		Name     string `json:"name"`
		PID      int    `json:"pid"`
		State    string `json:"state"`
		Draining bool   `json:"draining"`
		Running  []struct {
			RunID  string `json:"run_id"`
			TaskID string `json:"task_id"`
			Try    int    `json:"try"`
		} `json:"running"`
		StartedAt     *time.Time `json:"started_at"`
		LastHeartbeat time.Time  `json:"last_heartbeat"`
	}
)

func (tr apiTry) try() Try {
	return Try{Number: tr.TryNumber, State: tr.State, Worker: tr.Worker, QueuedAt: tr.QueuedAt, StartDate: tr.StartDate, EndDate: tr.EndDate}
}

// statusError is an answer of the API other than 2xx.
type statusError struct {
	Status int
	Body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

// call sends one request to one server's API as the admin token, and
// decodes a 2xx answer's body into out.
func (c *cluster) call(ctx context.Context, server, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.hostAddr(server, apiPort)+path, in)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, server, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s on %s: reading the answer: %w", method, path, server, err)
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s on %s: %w", method, path, server, &statusError{Status: res.StatusCode, Body: string(data)})
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s on %s: decoding %q: %w", method, path, server, data, err)
	}
	return nil
}

// callAny sends the request to whichever server answers, as a client of
// the cluster would: the servers in turn, again and again until one
// answers with less than 500 or ctx ends. A server that is down, cut off
// or without a leader to forward to is passed over. It returns the server
// that answered.
func (c *cluster) callAny(ctx context.Context, method, path string, body, out any) (string, error) {
	var last error
	for {
		// Each request starts at the next server, so that the standbys'
		// forwarding is used as much as the leader's own API.
		servers := c.names(roleServer)
		first := int(c.turn.Add(1))
		for i := range servers {
			server := servers[(first+i)%len(servers)]
			err := c.call(ctx, server, method, path, body, out)
			var se *statusError
			if err == nil || errors.As(err, &se) && se.Status < 500 {
				return server, err
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no server answered %s %s: %w", method, path, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// health asks a server's /healthz, which answers 503 with a body too.
func (c *cluster) health(ctx context.Context, server string) (health, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var h health
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.hostAddr(server, apiPort)+"/healthz", nil)
	if err != nil {
		return h, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("/healthz of %s answered %s: %w", server, res.Status, err)
	}
	if res.StatusCode != http.StatusOK {
		return h, fmt.Errorf("/healthz of %s answered %s: %s", server, res.Status, h.Error)
	}
	return h, nil
}

// leader returns the one server whose /healthz says it leads, or an error
// when none or more than one does.
func (c *cluster) leader(ctx context.Context) (string, error) {
	var leaders, says []string
	for _, server := range c.names(roleServer) {
		h, err := c.health(ctx, server)
		if err != nil {
			says = append(says, fmt.Sprintf("%s: %v", server, err))
			continue
		}
		says = append(says, fmt.Sprintf("%s: %s", server, h.Scheduler.Role))
		if h.Scheduler.Role == "leader" {
			leaders = append(leaders, server)
		}
	}
	if len(leaders) != 1 {
		return "", fmt.Errorf("%d servers say they lead (%s)", len(leaders), strings.Join(says, "; "))
	}
	return leaders[0], nil
}

// dagPath is the API path of the workload DAG's runs, or of what is under
// them.
func dagPath(parts ...string) string {
	p := "/api/v1/dags/" + workloadDAG + "/runs"
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	return p
}

// trigger creates a run of the workload at the logical date: each run has
// its own, so that a request sent again after its answer was lost gets 409
// instead of making a second run.
func (c *cluster) trigger(ctx context.Context, logical time.Time) (string, error) {
	body := map[string]any{"logical_date": logical.UTC().Format(time.RFC3339Nano)}
	server, err := c.callAny(ctx, http.MethodPost, dagPath(), body, nil)
	var se *statusError
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		return server, nil
	}
	return server, err
}

// runs lists the workload's runs, up to 100, the most the suite makes.
func (c *cluster) runs(ctx context.Context) ([]apiRun, error) {
	var runs []apiRun
	_, err := c.callAny(ctx, http.MethodGet, dagPath()+"?limit=100", nil, &runs)
	return runs, err
}
