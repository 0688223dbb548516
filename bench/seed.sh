#!/usr/bin/env bash
# One cycle of the seed's flow: LiberTEM's documented way of running its
# distributed tests without this project (docs "Running distributed tests":
# docker-compose build, up, run --rm tests, down), repaired only as far as
# this engine needs (bench/seed/: the base image the harness built for the
# run's Python, no registry; the CA bundle as a build secret; `dask
# scheduler`; engines that wait for the controller's file). The reference
# side of the ratios in docs/benchmarks.md, measured in the same sitting as
# the harness's side (bench/cycle.sh BASELINE=seed).
#
# Usage: bench/seed.sh PROJECT_DIR DATA_DIR
#   PROJECT_DIR  a LiberTEM source tree (the unpacked sdist, a copy, a checkout)
#   DATA_DIR     mounted at /data (an empty folder: the dist tests that need
#                detector files skip)
# Environment: SEED_BASE (the base image; default: the harness's base of
#   Python $SEED_PYTHON, 3.14), SEED_REQUIREMENTS (default: the harness's
#   committed requirements of that Python).
# Prints one line per phase with its seconds, then pytest's summary line.
# Leaves no container, network or volume; the seed's image stays tagged
# `dist-seed:bench` between cycles (its dependency layer is the seed's own
# cache), and `docker image rm dist-seed:bench` removes it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
src=${1:?usage: bench/seed.sh PROJECT_DIR DATA_DIR}
data=${2:?usage: bench/seed.sh PROJECT_DIR DATA_DIR}
python=${SEED_PYTHON:-3.14}
die() { echo "seed.sh: $*" >&2; exit 1; }
[[ -f $src/pyproject.toml ]] || die "$src is not a LiberTEM source tree (no pyproject.toml)"
[[ -d $data ]] || die "$data is not a folder"
base=${SEED_BASE:-$(docker image ls --format '{{.Repository}}:{{.Tag}}' libertem-dist-base | grep -- "-py$python-" | head -n 1)}
[[ -n $base ]] || die "no base image of Python $python: run 'cargo xtask build' once (or set SEED_BASE)"
reqs=${SEED_REQUIREMENTS:-$root/packaging/docker/requirements-py$python.txt}
[[ -f $reqs ]] || die "no requirements file $reqs"
uv=${SEED_UV:-$(ls -d "$root"/target/dist-test/tools/uv-*/uv 2>/dev/null | head -n 1)}
[[ -n $uv && -x $uv ]] || die "no uv binary: run 'cargo xtask build' once (or set SEED_UV)"
ca=""
for f in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    [[ -n $f && -f $f ]] && { ca=$f; break; }
done
[[ -n $ca ]] || die "no CA bundle found (set SSL_CERT_FILE)"

# A client that builds with BuildKit: one with buildx, else a pre-23 client.
DOCKER=docker
if ! docker buildx version >/dev/null 2>&1 && [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi

work=$(mktemp -d)
project=seed-bench-$$
export SEED_IMAGE=dist-seed:bench SEED_DATA=$data
compose() { "${COMPOSE[@]}" -p "$project" -f "$work/docker-compose.yml" "$@"; }
cleanup() {
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cp "$here/seed/Dockerfile" "$here/seed/docker-compose.yml" "$uv" "$work/"
grep -v '^#' "$reqs" >"$work/requirements.txt"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0=$(now)
# The build context, as `docker-compose build` sends the repository.
cp -r "$src" "$work/code"
rm -rf "$work/code/.pytest_cache" "$work/code/build"
before=$($DOCKER image inspect --format '{{.Id}}' "$SEED_IMAGE" 2>/dev/null || true)
DOCKER_BUILDKIT=1 $DOCKER build -q --secret "id=ca,src=$ca" --build-arg "BASE=$base" \
    -t "$SEED_IMAGE" "$work" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "the build failed"; }
after=$($DOCKER image inspect --format '{{.Id}}' "$SEED_IMAGE")
# The image it replaced, as a rebuild leaves it (dangling).
if [[ -n $before && $before != "$after" ]]; then $DOCKER image rm "$before" >/dev/null 2>&1 || true; fi
t1=$(now); echo "build_s $(secs "$t0" "$t1")"
compose up -d scheduler worker-1 worker-2 ipy-controller ipy-worker-1 ipy-worker-2 >"$work/up.log" 2>&1 \
    || { cat "$work/up.log" >&2; die "up failed"; }
t2=$(now); echo "up_s $(secs "$t1" "$t2")"
# The seed has no readiness check: one waits until the logs look ready.
sleep 5
t3=$(now); echo "sleep_s $(secs "$t2" "$t3")"
rc=0
compose run --rm tests >"$work/tests.log" 2>&1 || rc=$?
t4=$(now); echo "tests_s $(secs "$t3" "$t4") rc=$rc"
compose down -v --remove-orphans >/dev/null 2>&1
t5=$(now); echo "down_s $(secs "$t4" "$t5")"
echo "wall_s $(secs "$t0" "$t5")"
line=$(grep -E '^=+ .* in [0-9.]+s' "$work/tests.log" | tail -n 1 || true)
[[ -n $line ]] || { tail -n 20 "$work/tests.log" >&2; die "no pytest summary line (exit $rc)"; }
echo "$line"
