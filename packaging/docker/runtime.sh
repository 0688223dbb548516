#!/bin/sh
# The Python runtime every service runs, made once per set of inputs
# straight into its volume (mounted here at /venv) by `cargo xtask` (see
# runtime.rs): one `docker run` of the base image, with uv, the
# requirements and this script mounted read-only, and the host's CA bundle
# (TLS to PyPI may be intercepted) mounted at /run/secrets/ca_bundle. None of
# these is in any image: the venv is a volume, never an image layer, so it is
# neither exported by a build nor copied a second time.
# $1: the runtime's key, written last (the volume is complete once it is there).
set -e
key=$1
uv=/opt/uv/bin/uv
reqs=/tmp/dist-test/requirements.txt
if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi

# What a maker that died half-way left in the volume.
find /venv -mindepth 1 -maxdepth 1 -exec rm -rf {} +
$uv venv --quiet --python python3 /venv
echo "dist-test: installing $(grep -c '^[A-Za-z0-9]' $reqs) pinned packages with uv"
# Every line must carry a hash (--require-hashes).
UV_LINK_MODE=copy $uv pip install --python /venv/bin/python --no-deps --require-hashes -r $reqs \
|| { echo "dist-test: installing the pinned requirements failed (a line without a hash, a changed hash, or a package that cannot be fetched); regenerate them with 'cargo xtask update-reqs'" >&2; exit 1; }

# The packages' own test suites and jedi's bundled typeshed stubs: never
# imported here, and a third of the files. Except numpy/_core/tests: numpy
# 2.2's numpy.testing imports a module from it (what LiberTEM 0.15.2,
# resolved as of its release, gets).
find /venv/lib -path '*/numpy/_core/tests' -prune -o -type d -name tests -prune -exec rm -rf {} +
rm -rf /venv/lib/python3*/site-packages/jedi/third_party/typeshed

# The project under test is not in this volume (it is shared by every
# project with these requirements): each project's image holds its editable
# install in /opt/dist-test/project-site, which this hook adds to sys.path
# with its .pth files (the one that points at /src among them).
site=$(/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "import site; site.addsitedir('/opt/dist-test/project-site')" > "$site/dist-test-project.pth"

# Byte-code, so that no service compiles it at start-up: into one tree,
# /venv/pyc (PYTHONPYCACHEPREFIX, set in the image), for the interpreter's
# standard library and the venv alike. /venv/pyc/src points into the cache
# volume every service mounts at /numba-cache: the project's source is a
# read-only mount whose byte-code cannot be written beside it, so LiberTEM's
# own modules (and pytest's rewritten test modules) are compiled there once
# and read back on the next run; Python checks each against its source's size
# and mtime, so an edit is never masked. The interpreter's and the venv's
# byte-code is `unchecked-hash`: nothing here changes after this script, and
# the volume is mounted read-only.
echo "dist-test: compiling byte-code"
mkdir -p /venv/pyc
ln -s /numba-cache/byte-code /venv/pyc/src
PYTHONPYCACHEPREFIX=/venv/pyc /venv/bin/python -W ignore -m compileall -q -q -j 0 --invalidation-mode unchecked-hash \
    "$(/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" /venv/lib \
|| echo "dist-test: some modules have no byte-code (files that are not Python 3, as pip and uv also skip)"

echo "$key" > /venv/.dist-test-runtime
echo "dist-test: runtime $key complete"
