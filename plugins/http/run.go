package http

import (
	"bytes"
	"context"
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
	// logBodyLimit bounds how much of a reply's body goes to the task log.
	logBodyLimit = 64 << 10
	// jsonBodyLimit bounds the reply a task with `outputs` reads whole.
	jsonBodyLimit = 32 << 20
)

// client sends every request; each request's context bounds its time.
var client = &http.Client{}

// Run makes the task's request.
func (Stage) Run(ctx context.Context, t *sdk.Task) error {
	r, err := decodeRequest(t)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, r.timeout, fmt.Errorf("timed out after %s", r.timeout))
	defer cancel()

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	req.Header = r.header
	if h := r.header.Get("Host"); h != "" {
		req.Host = h
	}
	target := fmt.Sprintf("%s %s", r.method, req.URL.Redacted())
	t.Logf("%s", target)

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", target, requestError(ctx, err))
	}
	defer resp.Body.Close()
	limit := int64(logBodyLimit)
	if len(r.outputs) > 0 {
		limit = jsonBodyLimit
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	t.Logf("%s in %s", resp.Status, time.Since(start).Round(time.Millisecond))
	logBody(t.Log, data)
	if readErr != nil {
		return fmt.Errorf("%s: reading the reply: %w", target, requestError(ctx, readErr))
	}
	if err := t.SetOutput("status", strconv.Itoa(resp.StatusCode)); err != nil {
		return err
	}
	if !r.expects(resp.StatusCode) {
		return fmt.Errorf("%s: unexpected status %s, want %s", target, resp.Status, r.wanted())
	}
	if len(r.outputs) == 0 {
		return nil
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s: the reply is larger than %d MiB, too large to pick outputs from", target, jsonBodyLimit>>20)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return fmt.Errorf("outputs: the reply (Content-Type %q) is not JSON: %w", resp.Header.Get("Content-Type"), err)
	}
	for _, o := range r.outputs {
		v, err := o.sel.pick(doc)
		if err != nil {
			return fmt.Errorf("outputs.%s: %w", o.key, err)
		}
		s, err := outputValue(v)
		if err != nil {
			return fmt.Errorf("outputs.%s: %w", o.key, err)
		}
		if err := t.SetOutput(o.key, s); err != nil {
			return err
		}
	}
	return nil
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

// logBody writes the start of a reply's body to the task log: at most
// logBodyLimit bytes of text, cut at a character boundary.
func logBody(w io.Writer, data []byte) {
	if len(data) == 0 {
		return
	}
	shown, cut := data, false
	if len(shown) > logBodyLimit {
		end := logBodyLimit
		for i := end; i > end-utf8.UTFMax && i > 0; i-- {
			if utf8.RuneStart(shown[i]) {
				end = i
				break
			}
		}
		shown, cut = shown[:end], true
	}
	if !utf8.Valid(shown) {
		fmt.Fprintf(w, "(the reply's body is not text: %d bytes not shown)\n", len(data))
		return
	}
	w.Write(shown)
	if shown[len(shown)-1] != '\n' {
		io.WriteString(w, "\n")
	}
	if cut {
		fmt.Fprintf(w, "(the reply's body is truncated here: only its first %d KiB are logged)\n", logBodyLimit>>10)
	}
}
