#!/bin/sh
# NusterDB set-up: install what is missing (Debian 12, as root), configure, build, and
#   ./setup.sh demo   run the demo (the main job)
#   ./setup.sh test   run every test suite, also under AddressSanitizer and UBSan
# Both are idempotent and quick once everything is in place. Python work uses Debian's
# interpreter, /usr/bin/python3 (a `python3` earlier on PATH may lack Debian's numpy).
set -eu

cd "$(dirname "$0")"
what=${1:-}
case "$what" in
demo | test) ;;
deps) shift ;; # ./setup.sh deps [more packages]: install only (used by bench/run)
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac

PY=/usr/bin/python3
PACKAGES="gcc g++ meson ninja-build pkg-config
libxxhash-dev libzstd-dev liblz4-dev libsnappy-dev libjansson-dev libroaring-dev zlib1g-dev
libfuse3-dev fuse3 check python3-dev python3-numpy python3-pytest python3-mesonpy python3-mypy python3-distributed python3-dask scdoc man-db
libopenblas0-pthread dataset-fashion-mnist"
if [ "$what" = deps ]; then
	PACKAGES="$PACKAGES $*"
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup.sh: missing Debian packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "setup.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

[ "$what" = deps ] && exit 0

MESON=/usr/bin/meson
configure() { # dir, extra options...
	dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		$MESON setup "$dir" -Dwerror=true -Dpython_interpreter=$PY "$@"
	fi
	ninja -C "$dir"
}

configure build

if [ "$what" = demo ]; then
	exec ./tools/demo.sh build
fi

# Tests: the sanitizer build first, then the normal one, whose summary ends the run.
configure build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
echo "== every suite under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$MESON test -C build-asan --print-errorlogs --no-rebuild
grep -h 'crash-points:' build-asan/meson-logs/testlog.txt | sed 's/^/crash suite under sanitizers: /' || true
echo "== every suite (build)"
out=build/meson-logs/setup-test.out
{
	status=0
	$MESON test -C build --print-errorlogs --no-rebuild 2>&1 || status=$?
	echo "$status" > "$out.status"
} | tee "$out"
status=$(cat "$out.status")
echo
grep -h 'crash-points:' build/meson-logs/testlog.txt | sed 's/^/crash suite: /' || true
# The hardening figures (docs/RELIABILITY.md): disk-fault points and the bit-flip sweep.
grep -h '^faults: \|^bit-flip sweep: \|^hostile HNSW files: ' build/meson-logs/testlog.txt || true
# End with the test runner's summary.
sed -n '/^Ok:/,$p' "$out"
exit "$status"
