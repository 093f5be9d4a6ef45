package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kilnhq/kiln/plugins/sdk"
)

const (
	// timeout bounds one notification: a webhook that hangs must not hold
	// a worker slot for long.
	timeout = 30 * time.Second
	// logReplyLimit bounds how much of the webhook's reply goes to the log.
	logReplyLimit = 4 << 10
)

// client sends every notification; each request's context bounds its time.
var client = &http.Client{}

// params are the task's `with` parameters (schema.json).
type params struct {
	URL     string            `json:"url"`
	Body    *string           `json:"body"`
	Headers map[string]string `json:"headers"`
}

// Run sends the notification.
func (Stage) Run(ctx context.Context, t *sdk.Task) error {
	var p params
	if err := t.Decode(&p); err != nil {
		return err
	}
	if p.URL == "" {
		return errors.New("invalid parameters: url is required")
	}
	var body []byte
	if p.Body != nil {
		body = []byte(*p.Body)
	} else {
		var err error
		if body, err = summary(t); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timed out after %s", timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	target := "POST " + req.URL.Redacted()
	t.Logf("%s (%d bytes)", target, len(body))

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", target, requestError(ctx, err))
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, logReplyLimit+1))
	t.Logf("%s in %s", resp.Status, time.Since(start).Round(time.Millisecond))
	if len(reply) > 0 && utf8.Valid(reply) {
		if len(reply) > logReplyLimit {
			reply = append(reply[:logReplyLimit:logReplyLimit], "…"...)
		}
		t.Logf("%s", bytes.TrimRight(reply, "\n"))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: the webhook answered %s", target, resp.Status)
	}
	return nil
}

// message is the default notification: what the task is, and how it went
// when the scheduler says so (in a callback).
type message struct {
	DAGID       string `json:"dag_id"`
	RunID       string `json:"run_id"`
	TaskID      string `json:"task_id"`
	TryNumber   any    `json:"try_number"`
	LogicalDate string `json:"logical_date"`
	State       string `json:"state,omitempty"`
	Error       string `json:"error,omitempty"`
	LogURL      string `json:"log_url,omitempty"`
}

// summary builds the default notification from the task's environment.
func summary(t *sdk.Task) ([]byte, error) {
	m := message{
		DAGID:       t.Getenv("KILN_DAG_ID"),
		RunID:       t.Getenv("KILN_RUN_ID"),
		TaskID:      t.Getenv("KILN_TASK_ID"),
		LogicalDate: t.Getenv("KILN_LOGICAL_DATE"),
		State:       t.Getenv("KILN_STATE"),
		Error:       t.Getenv("KILN_ERROR"),
		LogURL:      t.Getenv("KILN_LOG_URL"),
	}
	if m.LogicalDate == "" {
		m.LogicalDate = t.Getenv("KILN_TS") // the logical date, RFC 3339
	}
	// A number when it is one, as Airflow users know it; else as given.
	try := t.Getenv("KILN_TRY_NUMBER")
	if n, err := strconv.Atoi(try); err == nil {
		m.TryNumber = n
	} else if try != "" {
		m.TryNumber = try
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("building the default message: %w", err)
	}
	return b, nil
}

// requestError says why a request failed: its time ran out, the task was
// cancelled, or the network error itself.
func requestError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err // it repeats the method and URL, which the caller says
	}
	return err
}
