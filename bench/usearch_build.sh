# usearch_build.sh OUT VERSION: fetch the npm package `usearch` VERSION into OUT/npm/
# (cached, never committed) and compile it natively as its Node build does, into
# OUT/usearch-build/VERSION/: the NumKong kernels (numkong.gypi's numkong_lib: the ISA
# probes of `node numkong/probes/probe.js`, numkong/c/*.c with NK_DYNAMIC_DISPATCH=1)
# and the C API c/lib.cpp (binding.gyp's flags, here with -O3 -march=native). A driver
# then links OUT/usearch-build/VERSION/lib.o and nk_*.o and includes
# OUT/npm/node_modules/usearch/c/usearch.h. Used by bench filter and bench hnsw.
set -eu
out=$1
usearch_version=$2
npmdir=$out/npm
pkg=$npmdir/node_modules/usearch
have=$(node -p "require('$pkg/package.json').version" 2>/dev/null || true)
if [ "$have" != "$usearch_version" ]; then
	if ! command -v npm >/dev/null; then
		echo "usearch_build: npm (Node.js's package manager) is missing: cannot fetch usearch" >&2
		exit 1
	fi
	echo "usearch_build: npm install usearch@$usearch_version into $npmdir" >&2
	mkdir -p "$npmdir"
	[ -f "$npmdir/package.json" ] || echo '{"private": true}' >"$npmdir/package.json"
	npm install --prefix "$npmdir" --ignore-scripts --no-audit --no-fund "usearch@$usearch_version" >&2
fi
nk=$pkg/numkong
for f in "$pkg/c/lib.cpp" "$pkg/c/usearch.h" "$pkg/include/usearch/index_dense.hpp" "$nk/probes/probe.js" \
	"$nk/numkong.gypi"; do
	if [ ! -f "$f" ]; then
		echo "usearch_build: the usearch package has no $f: its layout changed, see bench/usearch_build.sh" >&2
		exit 1
	fi
done
# The NumKong library as numkong.gypi's target numkong_lib: its sources, defines and flags.
nk_sources=$(grep -o 'numkong_root)/c/[A-Za-z0-9_]*\.c' "$nk/numkong.gypi" | sed 's|^numkong_root)/||')
nk_flags="-std=c11 -O3 -fPIC -Wno-unknown-pragmas -Wno-maybe-uninitialized -Wno-cast-function-type -Wno-switch
-Wno-psabi -DNK_NATIVE_F16=0 -DNK_NATIVE_BF16=0 -DNK_DYNAMIC_DISPATCH=1"
# The C API as the addon's target: USEARCH_USE_NUMKONG=1 and NK_DYNAMIC_DISPATCH=1 (binding.gyp), here with
# -O3 -march=native; NK_NATIVE_F16/BF16=0 as in the library (GCC 12's C++ has no __bf16, which
# -march=native would otherwise ask for on a CPU with AVX512-BF16), no OpenMP inside USearch (as the addon).
us_flags="-std=c++17 -O3 -march=native -fPIC -fexceptions -Wno-unknown-pragmas -Wno-maybe-uninitialized
-DUSEARCH_USE_NUMKONG=1 -DNK_DYNAMIC_DISPATCH=1 -DNK_NATIVE_F16=0 -DNK_NATIVE_BF16=0 -DUSEARCH_USE_OPENMP=0"
ub=$out/usearch-build/$usearch_version
stamp="gcc $(gcc -dumpfullversion) g++ $(g++ -dumpfullversion) | $nk_sources | $nk_flags | $us_flags"
if [ "$(cat "$ub/stamp" 2>/dev/null || true)" != "$stamp" ] || [ ! -f "$ub/lib.o" ]; then
	echo "usearch_build: compiling usearch $usearch_version (NumKong kernels, then the C API)" >&2
	rm -rf "$ub"
	mkdir -p "$ub"
	(cd "$nk" && CC=gcc node probes/probe.js) >&2 # writes $nk/nk_probes.h
	# shellcheck disable=SC2086,SC2016
	printf '%s\n' $nk_sources | NK_FLAGS=$nk_flags xargs -P "$(nproc)" -I{} sh -c \
		'gcc -c $NK_FLAGS -include "$1/nk_probes.h" -I"$1/include" "$1/$2" -o "$3/nk_$(basename "$2" .c).o"' \
		sh "$nk" {} "$ub"
	# shellcheck disable=SC2086
	g++ -c $us_flags -I"$pkg/include" -I"$nk/include" -I"$pkg/c" "$pkg/c/lib.cpp" -o "$ub/lib.o"
	echo "$stamp" >"$ub/stamp"
fi
