#!/bin/sh
# Installs what Kiln's tests need beyond Go: Chromium, for the browser tests
# in ui/browsertest. `make test` runs it first.
#
# Exit status:
#   0  Chromium is there (it was, or it was just installed): the browser
#      tests must run, so make sets KILN_REQUIRE_BROWSER=1.
#   1  we are root on a Debian-like system but installing Chromium failed
#      (the reason is printed): make still requires the browser tests, so
#      they fail with a clear message instead of skipping.
#   3  no Chromium and no way to install it here (not root, or no apt-get):
#      the browser tests skip.
# KILN_CHROMIUM names a browser to use instead.
set -u

have_chromium() {
	if [ -n "${KILN_CHROMIUM:-}" ]; then
		[ -x "$KILN_CHROMIUM" ]
		return
	fi
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$name" >/dev/null 2>&1 && return 0
	done
	[ -x /usr/bin/chromium ]
}

if have_chromium; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	exit 3
fi

echo "install-test-deps: installing chromium for the browser tests (apt-get)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# A failed update may still leave usable package lists: try the install.
apt-get update -q >"$log" 2>&1
if apt-get install -y -q chromium >>"$log" 2>&1 && have_chromium; then
	exit 0
fi
echo "install-test-deps: installing chromium failed:" >&2
tail -n 20 "$log" >&2
exit 1
