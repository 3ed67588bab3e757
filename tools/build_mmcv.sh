#!/usr/bin/env bash
# Build full mmcv (with compiled ops, needed by mmdet / mmseg) for the torch
# installed in the current Python environment, once, and cache the wheel.
#
#   bash tools/build_mmcv.sh            # build (first time, ~30 min on 2
#                                       # cores) or reuse the cached wheel,
#                                       # then install it
#
# No wheel of full mmcv exists on the package index for current torch. The
# source distribution builds once its compiler flags ask for C++20 (torch's
# headers need it) instead of C++14/17, with setuptools < 70 (which still has
# pkg_resources) and without build isolation. setuptools < 70 is put on
# PYTHONPATH for the build only; the environment's own setuptools is left
# alone. The wheel replaces mmcv-lite (both provide the `mmcv` package).
#
# Environment:
#   PYTHON               interpreter to build for (default: python)
#   MMCV_VERSION         default 2.1.0
#   MAX_JOBS             parallel compile jobs (default: 2)
#   MMRAZOR_WHEEL_CACHE  cache folder (default: ~/.cache/mmrazor/wheels)
set -euo pipefail

PY=${PYTHON:-python}
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE=${MMRAZOR_WHEEL_CACHE:-$HOME/.cache/mmrazor/wheels}
TAG=$("$PY" -c 'import sys, torch; print("torch%s-cp%d%d" % (torch.__version__.split("+")[0], *sys.version_info[:2]))')
DEST="$CACHE/mmcv-$MMCV_VERSION-$TAG"

install_cached() {
    "$PY" -m pip uninstall -q -y mmcv-lite >/dev/null 2>&1 || true
    "$PY" -m pip install -q --no-deps --force-reinstall "$DEST"/mmcv-*.whl
    # Checked from a neutral folder: a source tree in the working directory
    # would shadow the installed package.
    (cd / && "$PY" -c 'import mmcv, mmcv.ops; print("mmcv", mmcv.__version__, "with compiled ops:", mmcv.ops.__file__)')
}

if compgen -G "$DEST/mmcv-*.whl" >/dev/null; then
    echo "using the cached wheel in $DEST"
    install_cached
    exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "building mmcv $MMCV_VERSION for $TAG in $WORK (this takes a while)"
"$PY" -m pip install -q --target "$WORK/buildtools" 'setuptools<70' wheel
export PYTHONPATH="$WORK/buildtools${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    "mmcv==$MMCV_VERSION" -d "$WORK"
tar xzf "$WORK/mmcv-$MMCV_VERSION.tar.gz" -C "$WORK"
(
    cd "$WORK/mmcv-$MMCV_VERSION"
    sed -i -E 's/std=c\+\+1[47]/std=c++20/g; s#/std:c\+\+1[47]#/std:c++20#g' setup.py
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$PY" setup.py -q bdist_wheel \
        -d "$WORK/dist"
)

# Publish the wheel atomically: a half-written cache entry is never used.
mkdir -p "$CACHE"
mv "$WORK/dist" "$DEST.partial.$$"
mv -T "$DEST.partial.$$" "$DEST"
install_cached
