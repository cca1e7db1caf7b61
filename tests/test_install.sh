#!/bin/sh
# The library as a user outside this tree meets it: `meson install` into a temporary
# destdir, then docs/examples/quickstart.c compiled with nothing but the installed
# header and libnvf.pc (pkg-config sees no other .pc file, so a dependency that
# nvf.h does not need would fail here), and run.
#   test_install.sh MESON BUILD_DIR SOURCE_DIR CC [CFLAGS...]
set -eu
meson=$1 build=$2 src=$3 cc=$4
shift 4
dest=$(mktemp -d "${TMPDIR:-/tmp}/nvf-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT

"$meson" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$dest/install.log" 2>&1 ||
	{ cat "$dest/install.log"; exit 1; }
pc=$(find "$dest" -name libnvf.pc)
[ -n "$pc" ] || { echo "libnvf.pc was not installed"; exit 1; }
hdr=$(find "$dest" -name nvf.h)
[ -n "$hdr" ] || { echo "nvf.h was not installed"; exit 1; }
# Only the installed .pc: no system search path. The .pc is relocatable, so it
# points into the destdir.
PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
cflags=$(pkg-config --cflags libnvf)
libs=$(pkg-config --libs libnvf)
libdir=$(pkg-config --variable=libdir libnvf)
echo "pkg-config --cflags libnvf: $cflags"
echo "pkg-config --libs libnvf:   $libs"
case "$cflags" in *"$dest"*) ;; *) echo "cflags do not point into the install ($dest)"; exit 1 ;; esac
# shellcheck disable=SC2086
"$cc" "$@" -o "$dest/quickstart" "$src/docs/examples/quickstart.c" $cflags $libs
LD_LIBRARY_PATH=$libdir "$dest/quickstart" "$dest/quickstart.nvf"
echo "installed library: built and ran docs/examples/quickstart.c"

# The man page: `man nvf-tool` finds and renders it from the install, and it has a
# section for every command `nvf-tool --help` lists. The bash completion is there
# and parses.
man1=$(find "$dest" -path '*/man1/nvf-tool.1')
[ -n "$man1" ] || { echo "nvf-tool.1 was not installed"; exit 1; }
mandir=$(dirname "$(dirname "$man1")")
page=$(MANPATH=$mandir MANWIDTH=100 man nvf-tool 2>&1) || { echo "man nvf-tool failed: $page"; exit 1; }
echo "$page" | grep -q "EXIT STATUS" || { echo "man nvf-tool: no EXIT STATUS section"; exit 1; }
tool=$(find "$dest" -path '*/bin/nvf-tool')
for cmd in $(LD_LIBRARY_PATH=$libdir "$tool" --help | sed -n '/^commands:/,/^$/p' | awk 'NF > 1 { print $1 }'); do
	echo "$page" | grep -q "^ *$cmd " || { echo "man nvf-tool: no entry for the command $cmd"; exit 1; }
done
comp=$(find "$dest" -path '*/bash-completion/completions/nvf-tool')
[ -n "$comp" ] || { echo "the bash completion was not installed"; exit 1; }
bash -n "$comp" || { echo "the bash completion does not parse"; exit 1; }
echo "installed man page (man nvf-tool) and bash completion"
