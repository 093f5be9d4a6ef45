#!/bin/sh
# Checks for a Docker Engine, and installs what the tests of the docker
# stage need beside it: a static busybox, which their images are built
# from (FROM scratch, no registry). `make test` runs it.
#
# Exit status:
#   0  an Engine answers and busybox-static is there (it was, or it was
#      just installed): the Docker tests must run, so make sets
#      KILN_REQUIRE_DOCKER=1.
#   1  an Engine answers but installing busybox-static failed (the reason
#      is printed): the Docker tests are still required, and fail saying
#      what is missing instead of skipping.
#   3  no Engine answers: the Docker tests skip.
set -u

# The Engine is where the tests' client looks: $DOCKER_HOST, else the
# local socket.
engine_answers() {
	case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
	unix://*)
		sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
		sock=${sock#unix://}
		[ -S "$sock" ] || return 1
		if command -v curl >/dev/null 2>&1; then
			curl -sf --max-time 5 --unix-socket "$sock" http://docker/_ping >/dev/null
		fi
		;;
	tcp://*)
		command -v curl >/dev/null 2>&1 || return 1
		url=$(printf '%s' "$DOCKER_HOST" | sed 's|^tcp://|http://|')
		curl -sf --max-time 5 "$url/_ping" >/dev/null
		;;
	*)
		return 1
		;;
	esac
}

# Where dpkg is, the package tells a static busybox from Debian's dynamic
# one; elsewhere the tests check the binary themselves.
static_busybox() {
	[ -x /bin/busybox ] || return 1
	! command -v dpkg >/dev/null 2>&1 || dpkg -s busybox-static >/dev/null 2>&1
}

engine_answers || exit 3
static_busybox && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "docker-test-deps: a Docker Engine answers but /bin/busybox is missing or not static; install busybox-static" >&2
	exit 1
fi
echo "docker-test-deps: installing busybox-static for the docker stage's test images (apt-get)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q busybox-static >"$log" 2>&1 || { apt-get update -q >>"$log" 2>&1; apt-get install -y -q busybox-static >>"$log" 2>&1; }
if static_busybox; then
	exit 0
fi
echo "docker-test-deps: installing busybox-static failed:" >&2
tail -n 20 "$log" >&2
exit 1
