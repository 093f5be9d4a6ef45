package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// waitTimeout bounds every single browser step: a load, a wait for an
// element, a poll for a state.
const waitTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// chromium finds the browser: $KILN_CHROMIUM, else the usual names on
// PATH, else Debian's /usr/bin/chromium. It skips the test when there is
// none, and fails it instead when KILN_REQUIRE_BROWSER=1.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KILN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KILN_REQUIRE_BROWSER") == "1" {
		t.Fatal("KILN_REQUIRE_BROWSER=1 but no Chromium found ($KILN_CHROMIUM, chromium on PATH, /usr/bin/chromium); scripts/install-test-deps.sh installs it")
	}
	t.Skip("no Chromium found; set KILN_CHROMIUM or run scripts/install-test-deps.sh")
	return ""
}

// browser is one headless Chromium; each tab gets its own browser context
// (its own cookies), like a separate private window.
type browser struct{ ctx context.Context }

// startBrowser starts Chromium with a fresh profile, stopped when the test
// ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	var out lockedBuffer
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Nothing but the Kiln under test on the network.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium: %v\n%s", err, out.String())
	}
	return &browser{ctx: bctx}
}

// tab is one browser tab of a test, with the steps tests take. Every step
// is bounded by waitTimeout; a failed step saves a screenshot, logs what
// the page showed and ends the test.
type tab struct {
	t   *testing.T
	ctx context.Context
	k   *kiln

	mu         sync.Mutex
	dialogs    []string // messages of the dialogs accepted so far
	exceptions []string // uncaught JavaScript exceptions
}

// newTab opens a tab in a fresh browser context. It accepts every
// window.confirm, as a user clicking OK would, and reports uncaught
// JavaScript exceptions as test errors.
func (b *browser) newTab(t *testing.T, k *kiln) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, ctx: ctx, k: k}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	console := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, ev.Message)
			tb.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				tb.mu.Lock()
				tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s:%d: %s", m.URL, m.Line+1, m.String()))
				tb.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, e := range tb.exceptions {
			t.Errorf("uncaught JavaScript exception: %s", e)
		}
	})
	return tb
}

// accepted reports whether the tab has shown, and accepted, a dialog
// with the message msg.
func (tb *tab) accepted(msg string) bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Contains(tb.dialogs, msg)
}

// step runs one action with the step timeout.
func step[T any](tb *tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// must ends the test with the page's state when err is not nil.
func (tb *tab) must(err error, format string, args ...any) {
	tb.t.Helper()
	if err != nil {
		tb.fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

// unsafeInName matches what a test name may hold that a file name should not.
var unsafeInName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// fatalf saves a screenshot of the page as FAIL-<test>.png, logs the page's
// address, HTML and console exceptions, and ends the test.
func (tb *tab) fatalf(format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
	if len(html) > 12000 {
		html = html[:12000] + "\n... (cut)"
	}
	shot := ""
	if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		name := "FAIL-" + unsafeInName.ReplaceAllString(tb.t.Name(), "_")
		shot = saveScreenshot(tb.t, name, buf)
	}
	tb.mu.Lock()
	exceptions := strings.Join(tb.exceptions, "\n")
	tb.mu.Unlock()
	tb.t.Fatalf("%s\npage: %s\nscreenshot: %s\nJavaScript exceptions: %s\nHTML:\n%s",
		fmt.Sprintf(format, args...), loc, shot, exceptions, html)
}

// open loads path (on the server; or a full URL) and fails the test when
// the server answers with an error status.
func (tb *tab) open(path string) {
	tb.t.Helper()
	if status := tb.load(path); status >= 400 {
		tb.fatalf("opening %s: HTTP %d", path, status)
	}
}

// load loads path (on the server; or a full URL) and returns the HTTP
// status of the document.
func (tb *tab) load(path string) int64 {
	tb.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http://") {
		u = tb.k.URL + path
	}
	resp, err := step(tb, chromedp.NavigateResponse(u))
	tb.must(err, "opening %s", path)
	if resp == nil {
		return 0
	}
	return resp.Status
}

// submit clicks sel, a button or a link, waits for the page that answers,
// and fails the test when it has an error status.
func (tb *tab) submit(sel string) {
	tb.t.Helper()
	if status := tb.submitStatus(sel); status >= 400 {
		tb.fatalf("clicking %s: HTTP %d", sel, status)
	}
}

// submitStatus clicks sel, a button or a link, waits for the page that
// answers and returns its HTTP status.
func (tb *tab) submitStatus(sel string) int64 {
	tb.t.Helper()
	tb.wait(sel)
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	var (
		resp *network.Response
		err  error
	)
	// A live block swapped in (kiln.js) between finding the element and
	// clicking it detaches the node found: find it again in the new block.
	for range 5 {
		resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		if err == nil || !strings.Contains(err.Error(), "(-32000)") {
			break
		}
	}
	tb.must(err, "clicking %s and waiting for the next page", sel)
	if resp == nil {
		return 0
	}
	return resp.Status
}

// wait waits until an element matching sel is visible.
func (tb *tab) wait(sel string) {
	tb.t.Helper()
	_, err := step(tb, chromedp.WaitVisible(chromedp.CSS(sel)))
	tb.must(err, "waiting for %s to be visible", sel)
}

// present waits until an element matching sel is in the page.
func (tb *tab) present(sel string) {
	tb.t.Helper()
	_, err := step(tb, chromedp.WaitReady(chromedp.CSS(sel)))
	tb.must(err, "waiting for %s to be in the page", sel)
}

// count is how many elements match sel now.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	n, err := step(tb, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	tb.must(err, "counting %s", sel)
	return n
}

// text is the text content of the first element matching sel, once it is
// in the page.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	tb.present(sel)
	// Read in one script: a page that refreshes itself live may replace
	// the node between a lookup by node id and the read.
	s, err := step(tb, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	tb.must(err, "reading the text of %s", sel)
	return strings.TrimSpace(s)
}

// attr is the attribute name of the first element matching sel.
func (tb *tab) attr(sel, name string) string {
	tb.t.Helper()
	tb.present(sel)
	v, err := step(tb, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute(%q) || ""`, sel, name)))
	tb.must(err, "reading %s of %s", name, sel)
	return v
}

// click clicks the first element matching sel.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	_, err := step(tb, chromedp.Click(chromedp.CSS(sel)))
	tb.must(err, "clicking %s", sel)
}

// setValue sets the value of a form field, as choosing it would: with the
// input and change events.
func (tb *tab) setValue(sel, value string) {
	tb.t.Helper()
	tb.present(sel)
	got := eval[string](tb, fmt.Sprintf(`(function (e, v) {
		e.value = v;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return e.value;
	})(document.querySelector(%q), %q)`, sel, value))
	if got != value {
		tb.fatalf("setting %s to %q: its value is %q", sel, value, got)
	}
}

// typeInto types text into the field sel after emptying it.
func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	tb.wait(sel)
	tb.setValue(sel, "")
	_, err := step(tb, chromedp.SendKeys(chromedp.CSS(sel), text))
	tb.must(err, "typing into %s", sel)
}

// path is the path of the page the tab shows, decoded.
func (tb *tab) path() string {
	tb.t.Helper()
	loc, err := step(tb, chromedp.Location())
	tb.must(err, "reading the location")
	u, err := url.Parse(loc)
	tb.must(err, "parsing the location %q", loc)
	return u.Path
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := step(tb, chromedp.Evaluate[T](expr))
	tb.must(err, "evaluating %s", expr)
	return v
}

// waitJS polls the JavaScript predicate expr in the page, without
// reloading it, until it is true. describe, a JavaScript expression, says
// what the page showed instead when the wait times out.
func (tb *tab) waitJS(what, expr, describe string) {
	tb.t.Helper()
	_, err := step(tb, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		defer cancel()
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](describe))
		tb.fatalf("waiting %s for %s (the page shows %s): %v", waitTimeout, what, got, err)
	}
}

// waitState waits, without reloading, until the element sel has
// data-state="want".
func (tb *tab) waitState(what, sel, want string) {
	tb.t.Helper()
	tb.waitJS(fmt.Sprintf("%s to be %s", what, want),
		fmt.Sprintf(`document.querySelector(%q) !== null`, fmt.Sprintf(`%s[data-state=%q]`, sel, want)),
		fmt.Sprintf(`(function(){var e=document.querySelector(%q); return e ? "data-state=" + e.getAttribute("data-state") : "no %s"})()`, sel, sel))
}

// reloadUntil reloads path until an element matching sel is there.
func (tb *tab) reloadUntil(path, sel string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		tb.open(path)
		if tb.count(sel) > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.fatalf("%s did not show %s within %s", path, sel, waitTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// login signs in as u from the login page and waits for the page that
// follows to name the user.
func (tb *tab) login(u user) {
	tb.t.Helper()
	tb.open("/login")
	tb.wait("form#login-form")
	tb.typeInto(`form#login-form input[name="name"]`, u.name)
	tb.typeInto(`form#login-form input[name="password"]`, u.password)
	tb.submit("#login-submit")
	tb.wait("#whoami")
	if got := tb.text("#whoami"); got != u.name {
		tb.fatalf("#whoami = %q after signing in as %s", got, u.name)
	}
}

// screenshot saves a full-page PNG of what the tab shows as name.png in
// the screenshot folder.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	buf, err := step(tb, chromedp.FullScreenshot(100))
	tb.must(err, "taking the screenshot %s", name)
	saveScreenshot(tb.t, name, buf)
}

// screenshotDir is $KILN_SCREENSHOTS, else ./screenshots (gitignored).
func screenshotDir() (string, error) {
	dir := os.Getenv("KILN_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	return filepath.Abs(dir)
}

// removeFailShots removes the FAIL-*.png of earlier runs, so that the
// folder shows only this run's failures.
func removeFailShots(t *testing.T) {
	dir, err := screenshotDir()
	if err != nil {
		return
	}
	old, _ := filepath.Glob(filepath.Join(dir, "FAIL-*.png"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Logf("removing an old screenshot: %v", err)
		}
	}
}

// saveScreenshot writes a PNG and returns its path; failing to save it is a
// test error, not a reason to stop.
func saveScreenshot(t *testing.T, name string, png []byte) string {
	t.Helper()
	dir, err := screenshotDir()
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	path := filepath.Join(dir, name+".png")
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Errorf("saving screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot: %s", path)
	return path
}
