// Package browsertest drives Kiln's web pages in a real headless Chromium,
// through chromedp, against a real `kiln standalone` process: sign in and
// out, list and open DAGs, trigger a run from the form and watch it turn
// green without a reload, read a task log, clear a failed task, be
// refused as a viewer, fold a task group and follow a dataset to its
// event.
//
// The package has only tests. They need a Chromium: $KILN_CHROMIUM, or
// chromium (or chrome) on PATH; `make test` installs it on Debian
// (scripts/install-test-deps.sh). Without one the tests skip, unless
// KILN_REQUIRE_BROWSER=1, which `make test` sets whenever a browser is
// there or was just installed, so that CI cannot skip them silently.
//
// Each run saves full-page screenshots of the main pages into
// $KILN_SCREENSHOTS (a relative path is read from this folder), by default
// ui/browsertest/screenshots, and a FAIL-*.png of the page a failing test
// was looking at; the test log names the folder.
package browsertest
