#!/usr/bin/env bash
# The image recipe: every install and start step of the Docker images, as one script.
#
# The Dockerfile's RUN, HEALTHCHECK and CMD lines call this script, and CI runs the CPU
# recipe on its own machine outside Docker (mode `ci`), because no Docker engine runs
# there: the steps that CI exercises are the steps the image runs, not a copy of them.
#
#   docker/recipe.sh TARGET MODE [ARGS...]
#     TARGET  cpu  (node 20 + @tensorflow/tfjs-node, backend 'tensorflow')
#             gpu  (CUDA 11.2 + cuDNN 8 + @tensorflow/tfjs-node-gpu, backend 'tensorflow-gpu')
#     MODE    deps     npm ci --omit=dev, install scripts off (the project's .npmrc)
#             backend  the native TensorFlow addon for TARGET (see TF_ADDON_SOURCE)
#             install  deps, then backend
#             start    exec the server (extra ARGS are passed on as flags)
#             health   exit 0 when GET /health/ready answers 200 (the image's HEALTHCHECK)
#             smoke    start the server on a free loopback port, wait until ready, make one
#                      real request, stop it with SIGTERM and require exit status 0
#             ci       in a temporary copy of the repository (what .dockerignore lets into
#                      the image): install, then smoke; the copy is removed afterwards
#
# Environment:
#   TF_ADDON_SOURCE  cpu only. `download` (the image's default): tfjs-node's own install
#                    script fetches libtensorflow and the prebuilt addon from Google's
#                    storage, then `npm run setup:tensorflow` proves the addon computes.
#                    `wheel`: `npm run setup:tensorflow` builds the addon from the
#                    tensorflow-cpu pip wheel (for machines that reach only the npm registry
#                    and pip's store; CI uses it, since the download is impossible there).
#                    The gpu target always downloads: tfjs-node-gpu 4.22 needs Google's
#                    libtensorflow 2.9.1 GPU build, which no registry carries.
#   TF_CACHE_DIR     where setup:tensorflow keeps the wheel (ci mode points it at the
#                    original checkout's .cache/tensorflow so the 270 MB wheel is reused)
#   SMOKE_FIXTURE    JSON fixture whose `request` the smoke test sends and whose
#                    `expected.loss` it checks (default ../shared/fixtures/nt_xent_small.json)
#   READY_TIMEOUT    seconds smoke waits for /health/ready (default 300)
#   KEEP_CI_COPY=1   ci mode keeps the temporary copy (its path is printed)
set -euo pipefail

say () { echo "[recipe] $*"; }
die () { echo "[recipe] FAILED: $*" >&2; exit 1; }
usage () {
  echo "usage: docker/recipe.sh cpu|gpu deps|backend|install|start|health|smoke|ci [server flags...]" >&2
  echo "       (the header of docker/recipe.sh says what each mode does)" >&2
  exit 2
}

# The repository root is the script's parent folder, wherever it is called from (the
# image's WORKDIR, CI's clone, or ci mode's temporary copy).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-}"
MODE="${2:-}"
[ $# -ge 2 ] && shift 2 || shift $#
case "$TARGET" in cpu|gpu) ;; *) echo "[recipe] unknown target '${TARGET}' (cpu or gpu)" >&2; usage ;; esac

# What each target's server runs on, and which package carries its native addon.
if [ "$TARGET" = gpu ]; then
  DEFAULT_BACKEND=tensorflow-gpu
  NATIVE_PKG=@tensorflow/tfjs-node-gpu
else
  DEFAULT_BACKEND=tensorflow
  NATIVE_PKG=@tensorflow/tfjs-node
fi

# tfjs-node loads lib/napi-v8/tfjs_binding.node (src/compute/backend.ts checks the same path).
addon_path () { echo "$ROOT/node_modules/$NATIVE_PKG/lib/napi-v8/tfjs_binding.node"; }

step_deps () {
  cd "$ROOT"
  say "deps: npm ci --omit=dev (install scripts stay off: .npmrc ignore-scripts=true)"
  # --omit=dev keeps tap and typescript out of the image; tsx is a runtime dependency
  # because the server is TypeScript run without a build step. The optional tfjs-node
  # packages are installed without their addon; step_backend builds the one TARGET needs.
  npm ci --omit=dev --no-audit --no-fund
  [ -d "$ROOT/node_modules/$NATIVE_PKG" ] || die "$NATIVE_PKG is not in node_modules after npm ci (it is an optional dependency: was it skipped for this platform?)"
  say "deps: $(ls "$ROOT/node_modules" | wc -l | tr -d ' ') entries in node_modules, $NATIVE_PKG present (no addon yet)"
}

step_backend () {
  cd "$ROOT"
  if [ "$TARGET" = gpu ]; then
    # tfjs-node-gpu's "install" script is `node scripts/install.js gpu download`: it fetches
    # libtensorflow-gpu-linux-x86_64-2.9.1 into deps/ and then runs `node-pre-gyp install
    # --fallback-to-build`. `npm rebuild` runs that lifecycle script with node_modules/.bin on
    # PATH (where node-pre-gyp is); --ignore-scripts=false overrides the project's .npmrc.
    say "backend: npm rebuild $NATIVE_PKG with its install script (libtensorflow 2.9.1 GPU download)"
    npm rebuild "$NATIVE_PKG" --ignore-scripts=false --foreground-scripts
    [ -f "$(addon_path)" ] || die "the install script finished but $(addon_path) is missing"
    local lib="$ROOT/node_modules/$NATIVE_PKG/deps/lib/libtensorflow.so.2.9.1"
    [ -f "$lib" ] || die "libtensorflow 2.9.1 is missing at $lib"
    # The addon is not loaded here: loading it needs libcuda.so.1, which the NVIDIA container
    # runtime mounts only when a GPU is attached (at run time, not at build time).
    say "backend: built $(addon_path); it loads at start, when a GPU and its driver are attached"
    return
  fi
  local source="${TF_ADDON_SOURCE:-download}"
  case "$source" in
    download)
      say "backend: npm rebuild $NATIVE_PKG with its install script (libtensorflow download)"
      npm rebuild "$NATIVE_PKG" --ignore-scripts=false --foreground-scripts
      ;;
    wheel)
      say "backend: TF_ADDON_SOURCE=wheel, building the addon from the tensorflow-cpu wheel (no download from Google's storage)"
      ;;
    *) die "TF_ADDON_SOURCE must be download or wheel (got '$source')" ;;
  esac
  # Idempotent: after a download it only proves the addon computes (a conv2d gradient);
  # otherwise it builds the addon from the wheel and then proves it.
  npm run setup:tensorflow
  [ -f "$(addon_path)" ] || die "setup:tensorflow exited 0 but $(addon_path) is missing"
}

step_start () {
  cd "$ROOT"
  export BACKEND="${BACKEND:-$DEFAULT_BACKEND}"
  [ -f "$ROOT/server/start.ts" ] || die "server/start.ts is missing in $ROOT"
  say "start: node --import tsx server/start.ts (BACKEND=$BACKEND HOST=${HOST:-<config default>} PORT=${PORT:-<config default>})"
  # exec: node becomes this process, so SIGTERM from `docker stop` or the kubelet reaches
  # the server itself and its graceful shutdown decides the exit status.
  exec node --import tsx server/start.ts "$@"
}

# One GET with node's fetch: the slim and CUDA images have no curl.
probe_ready () {
  local url="$1"
  node -e '
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 3000).unref()
    fetch(process.argv[1], { signal: ac.signal })
      .then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))
  ' "$url"
}

step_health () {
  probe_ready "http://127.0.0.1:${PORT:-8080}/health/ready"
}

free_port () {
  node -e '
    const s = require("node:net").createServer()
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => console.log(p)) })
  '
}

step_smoke () {
  cd "$ROOT"
  local fixture="${SMOKE_FIXTURE:-$ROOT/../shared/fixtures/nt_xent_small.json}"
  [ -f "$fixture" ] || die "smoke fixture $fixture is missing (set SMOKE_FIXTURE)"
  local port data log pid status=0
  port="$(free_port)"
  data="$(mktemp -d)"
  log="$data.server.log"
  # Loopback only: the smoke test talks to nothing but this machine.
  say "smoke: starting the server on 127.0.0.1:$port (BACKEND=${BACKEND:-$DEFAULT_BACKEND}, WORKERS=${WORKERS:-1}, DATA_DIR=$data)"
  HOST=127.0.0.1 PORT="$port" WORKERS="${WORKERS:-1}" DATA_DIR="$data" LOG_LEVEL="${LOG_LEVEL:-warn}" \
    bash "$ROOT/docker/recipe.sh" "$TARGET" start >"$log" 2>&1 &
  pid=$!
  # Whatever happens below, the server does not outlive the smoke test.
  trap 'kill -TERM '"$pid"' 2>/dev/null || true; rm -rf "'"$data"'" "'"$log"'"' EXIT

  local waited=0 limit="${READY_TIMEOUT:-300}"
  until probe_ready "http://127.0.0.1:$port/health/ready"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || status=$?
      tail -n 40 "$log" >&2
      die "the server exited with status $status before it was ready (log above)"
    fi
    [ "$waited" -ge "$limit" ] && { tail -n 40 "$log" >&2; die "not ready after ${limit}s"; }
    sleep 1
    waited=$((waited + 1))
  done
  say "smoke: /health/ready is 200 after ~${waited}s"

  # One real evaluation: the fixture's request as JSON, its loss checked against the
  # reference value (relative tolerance for float32 on any backend).
  node -e '
    const fs = require("node:fs")
    const [fixtureFile, base] = process.argv.slice(1)
    const fx = JSON.parse(fs.readFileSync(fixtureFile, "utf8"))
    const url = `${base}/v1/loss/${fx.kind}`
    fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(fx.request) })
      .then(async r => {
        const text = await r.text()
        if (r.status !== 200) throw new Error(`POST ${url} answered ${r.status}: ${text.slice(0, 500)}`)
        const body = JSON.parse(text)
        const want = fx.expected.loss
        const rel = Math.abs(body.loss - want) / Math.max(Math.abs(want), 1e-12)
        if (!(rel < 1e-4)) throw new Error(`loss ${body.loss} differs from the reference ${want} (relative error ${rel})`)
        console.log(`[recipe] smoke: POST /v1/loss/${fx.kind} (${fx.name}) -> 200, loss ${body.loss} vs reference ${want} (relative error ${rel.toExponential(2)}), backend ${body.meta?.backend ?? "?"}`)
      })
      .catch(err => { console.error(`[recipe] FAILED: ${err.message}`); process.exit(1) })
  ' "$fixture" "http://127.0.0.1:$port" || { tail -n 40 "$log" >&2; die "the request failed (server log above)"; }

  say "smoke: SIGTERM to the server (pid $pid)"
  kill -TERM "$pid"
  wait "$pid" || status=$?
  trap - EXIT
  rm -rf "$data"
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "the server exited with status $status after SIGTERM (expected 0)"
  fi
  rm -f "$log"
  say "smoke: the server stopped with exit status 0"
}

step_ci () {
  local copy
  copy="$(mktemp -d "${TMPDIR:-/tmp}/ssl-loss-recipe.XXXXXX")"
  if [ "${KEEP_CI_COPY:-}" = 1 ]; then
    say "ci: keeping $copy (KEEP_CI_COPY=1)"
  else
    trap 'rm -rf "'"$copy"'"' EXIT
  fi
  # The same files the image gets: the working tree less what .dockerignore leaves out
  # (node_modules, .git, caches, data). Patterns there are plain names, which tar matches
  # as any path component, as `**/name` would in Docker.
  local excludes
  excludes="$(grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/.dockerignore" | sed -e 's#^\*\*/##' -e 's#/$##')"
  say "ci: copying the build context into $copy/repo (excluding: $(echo $excludes))"
  mkdir -p "$copy/repo"
  tar -C "$ROOT" --exclude-from=<(printf '%s\n' "$excludes") -cf - . | tar -C "$copy/repo" -xf -
  [ -d "$copy/repo/node_modules" ] && die "node_modules was copied: .dockerignore must exclude it"

  # Outside Docker the cpu addon comes from the tensorflow-cpu wheel by default: machines
  # that reach only the npm registry cannot download libtensorflow from Google's storage.
  local source="${TF_ADDON_SOURCE:-wheel}"
  [ "$TARGET" = cpu ] && say "ci: TF_ADDON_SOURCE=$source (the image's default is download)"
  local started=$SECONDS
  TF_ADDON_SOURCE="$source" TF_CACHE_DIR="${TF_CACHE_DIR:-$ROOT/.cache/tensorflow}" \
    bash "$copy/repo/docker/recipe.sh" "$TARGET" install
  SMOKE_FIXTURE="${SMOKE_FIXTURE:-$ROOT/../shared/fixtures/nt_xent_small.json}" \
    bash "$copy/repo/docker/recipe.sh" "$TARGET" smoke
  say "ci: $TARGET recipe passed in $((SECONDS - started))s (install + smoke, outside Docker)"
}

case "$MODE" in
  deps) step_deps ;;
  backend) step_backend ;;
  install) step_deps; step_backend ;;
  start) step_start "$@" ;;
  health) step_health ;;
  smoke) step_smoke ;;
  ci) step_ci ;;
  *) echo "[recipe] unknown mode '${MODE}'" >&2; usage ;;
esac
