#!/bin/sh
# tests/install.sh: installing and linking (issue 15).  Installs the build
# into a temporary prefix (make install prefix=DIR) and into a staging
# directory (make install DESTDIR=DIR), then checks that
#   - the installed libkvreviver.so needs no libcudart (the CUDA runtime is
#     linked statically where the CUDA backend is built),
#   - the installed kvreviver.pc names DIR as its prefix,
#   - a program built with pkg-config --cflags --libs links and runs, and
#     one built with pkg-config --static against libkvreviver.a too,
#   - the installed kvreviver runs with no LD_LIBRARY_PATH and no ldconfig,
#   - the doc/ pages the header names are installed in share/doc/kvreviver.
# SKIPs (77) where the library is not built shared (--disable-shared).
# Uses the build tree read-only apart from make install's own outputs.
set -u
: "${top_srcdir:?}" "${top_builddir:?}"
make=${KVR_MAKE:-make}
cc=${KVR_CC:-cc}
pkgconfig=${KVR_PKG_CONFIG:-pkg-config}
cd "$top_builddir" || exit 99

if ! grep -q "^dlname='..*'" libkvreviver.la 2>/dev/null; then
    echo "SKIP: libkvreviver is not built as a shared library (--disable-shared)"
    exit 77
fi
command -v "$pkgconfig" >/dev/null 2>&1 || { echo "SKIP: no pkg-config"; exit 77; }
if command -v readelf >/dev/null 2>&1; then needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
elif command -v objdump >/dev/null 2>&1; then needed() { objdump -p "$1" | awk '$1 == "NEEDED" {print $2}'; }
else echo "SKIP: neither readelf nor objdump"; exit 77; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-install.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# the inner make: no jobserver or flags of the make running the tests
unset MAKEFLAGS MFLAGS MAKELEVEL
unset LD_LIBRARY_PATH

# ---- make install prefix=DIR -------------------------------------------
inst=$tmp/prefix
if ! $make install prefix="$inst" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"; echo "FAIL: make install prefix=$inst"; exit 1
fi
pc=$(find "$inst" -name kvreviver.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no kvreviver.pc under $inst"; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
so=$libdir/libkvreviver.so
[ -f "$so" ] || { echo "FAIL: no $so"; exit 1; }
echo "installed: $so, $pc"
# the pages lib/kvreviver.h points at are installed beside it (issue 29)
for page in spec.md methods.md files.md errors.md README.md; do
    [ -f "$inst/share/doc/kvreviver/$page" ] || bad "doc/$page is not installed in $inst/share/doc/kvreviver"
done

deps=$(needed "$so")
echo "NEEDED by libkvreviver.so:" $deps
case " $deps " in *libcudart*) bad "libkvreviver.so needs the shared CUDA runtime" ;; esac

export PKG_CONFIG_PATH="$pcdir"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
got=$($pkgconfig --variable=prefix kvreviver)
[ "$got" = "$inst" ] || bad "kvreviver.pc has prefix=$got, not $inst"
got=$($pkgconfig --variable=libdir kvreviver)
[ "$got" = "$libdir" ] || bad "kvreviver.pc has libdir=$got, not $libdir"
la=$libdir/libkvreviver.la
if [ -f "$la" ]; then
    grep -q "^libdir='$libdir'" "$la" || bad "the installed libkvreviver.la does not name libdir $libdir"
fi

app=$top_srcdir/tests/install-app.c
# shared: the library found through the program's own rpath
cflags=$($pkgconfig --cflags kvreviver) && libs=$($pkgconfig --libs kvreviver) || bad "pkg-config --cflags --libs"
echo "shared link: $cc $cflags app.c $libs"
if $cc $cflags "$app" -o "$tmp/app-shared" $libs -Wl,-rpath,"$libdir"; then
    case " $(needed "$tmp/app-shared") " in *" libkvreviver.so"*) ;; *) bad "app-shared does not need libkvreviver.so" ;; esac
    "$tmp/app-shared" || bad "app-shared did not run"
    if command -v ldd >/dev/null 2>&1; then   # nothing of CUDA is loaded
        loaded=$(ldd "$tmp/app-shared" | grep -i -e cudart -e libcuda)
        [ -z "$loaded" ] || bad "app-shared loads $loaded"
    fi
else
    bad "a program does not link with pkg-config --cflags --libs kvreviver"
fi
# static: pkg-config --static, with libkvreviver.a in place of the .so
slibs=$($pkgconfig --static --libs kvreviver) || bad "pkg-config --static --libs"
slibs=$(echo " $slibs " | sed 's/ -lkvreviver / -l:libkvreviver.a /')
echo "static link: $cc $cflags app.c $slibs"
if [ ! -f "$libdir/libkvreviver.a" ]; then
    echo "no libkvreviver.a (--disable-static): static link not checked"
elif $cc $cflags "$app" -o "$tmp/app-static" $slibs; then
    sdeps=$(needed "$tmp/app-static")
    echo "NEEDED by the static program:" $sdeps
    case " $sdeps " in *libkvreviver*|*libcudart*) bad "the static program needs $sdeps" ;; esac
    "$tmp/app-static" || bad "app-static did not run"
else
    bad "a program does not link with pkg-config --static --libs kvreviver"
fi

# the installed tool, no LD_LIBRARY_PATH, no ldconfig
tool=$inst/bin/kvreviver
if out=$("$tool" --version 2>&1); then echo "$tool --version: $out"
else echo "$out"; bad "the installed kvreviver (prefix=$inst) does not run"; fi

# ---- make install DESTDIR=DIR (staged, as packages do) -----------------
stage=$tmp/stage
if $make install DESTDIR="$stage" >"$tmp/stage.log" 2>&1; then
    tool=$(find "$stage" -path '*/bin/kvreviver' | head -n 1)
    if [ -z "$tool" ]; then bad "no bin/kvreviver under $stage"
    elif out=$("$tool" --version 2>&1); then echo "staged $tool --version: $out"
    else echo "$out"; bad "the staged kvreviver (DESTDIR) does not run"; fi
else
    cat "$tmp/stage.log"; bad "make install DESTDIR=$stage"
fi

[ $fail -eq 0 ] && echo "install: ok"
exit $fail
