package httpsensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/kiln/plugins/sdk"
)

const (
	// pokeTimeout bounds one poke's request: one that hangs is "not yet".
	pokeTimeout = 30 * time.Second
	// bodyLimit bounds how much of a reply body_contains searches.
	bodyLimit = 16 << 20
)

// client sends every poke; each request's context bounds its time.
var client = &http.Client{}

// params are the task's `with` parameters (schema.json).
type params struct {
	URL          string `json:"url"`
	Method       string `json:"method"`
	ExpectStatus []int  `json:"expect_status"`
	BodyContains string `json:"body_contains"`
}

// Run pokes once: success when the condition is met, else an error
// wrapping sdk.ErrNotYet that says why not. The host logs that reason as
// the poke's last line.
func (Stage) Run(ctx context.Context, t *sdk.Task) error {
	var p params
	if err := t.Decode(&p); err != nil {
		return err
	}
	if p.URL == "" {
		return errors.New("invalid parameters: url is required")
	}
	if err := checkURL(p.URL); err != nil {
		return fmt.Errorf("invalid parameters: url: %w", err)
	}
	method := strings.ToUpper(p.Method)
	if method == "" {
		method = http.MethodGet
	}

	pctx, cancel := context.WithTimeoutCause(ctx, pokeTimeout, fmt.Errorf("no reply within %s", pokeTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, method, p.URL, nil)
	if err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	target := method + " " + req.URL.Redacted()

	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil { // the task was cancelled, not the poke
			return fmt.Errorf("%s: %w", target, context.Cause(ctx))
		}
		if pctx.Err() != nil {
			err = context.Cause(pctx)
		} else if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return notYet("%s: %v", target, err)
	}
	defer resp.Body.Close()
	if !expects(p.ExpectStatus, resp.StatusCode) {
		return notYet("%s: status %s, want %s", target, resp.Status, wanted(p.ExpectStatus))
	}
	if p.BodyContains != "" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", target, context.Cause(ctx))
			}
			return notYet("%s: status %s, but reading the reply failed: %v", target, resp.Status, err)
		}
		if !bytes.Contains(body, []byte(p.BodyContains)) {
			return notYet("%s: status %s, but the reply (%d bytes) does not contain %q",
				target, resp.Status, len(body), p.BodyContains)
		}
	}
	if p.BodyContains != "" {
		t.Logf("%s: %s, and the reply contains %q", target, resp.Status, p.BodyContains)
	} else {
		t.Logf("%s: %s", target, resp.Status)
	}
	return t.SetOutput("status", strconv.Itoa(resp.StatusCode))
}

// notYet is a poke whose condition is not met, for the reason given.
func notYet(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), sdk.ErrNotYet)
}

// checkURL checks that raw is an absolute http or https URL: any other is
// wrong on every poke, so it fails the task instead of waiting.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	return nil
}

// expects reports whether code is one of want, or a 2xx when want is empty.
func expects(want []int, code int) bool {
	if len(want) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(want, code)
}

// wanted says which statuses meet the condition, for the log.
func wanted(want []int) string {
	switch len(want) {
	case 0:
		return "2xx"
	case 1:
		return strconv.Itoa(want[0])
	}
	s := make([]string, len(want))
	for i, c := range want {
		s[i] = strconv.Itoa(c)
	}
	return "one of " + strings.Join(s, ", ")
}
