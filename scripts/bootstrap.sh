#!/usr/bin/env bash
# bootstrap.sh: prepares a Debian/Ubuntu host to build, test and run Shoal, from any directory.
#
# Steps, each of which checks first and only acts on what is missing, so a second run changes nothing:
#   1. Node.js: checks that node >= 20.19 is installed (it is not installed from the OS packages,
#      whose version is too old).
#   2. OS packages: installs with apt-get only the missing ones of docker.io, nats-server, nftables,
#      iproute2, busybox-static and protobuf-compiler (`apt-get update` runs only then). docker.io is
#      skipped when a Docker engine already answers `docker info`, or dockerd is installed.
#   3. dockerd: when no engine answers, starts dockerd in the background (log: /var/log/shoal-dockerd.log)
#      and waits up to 60 s for it to answer.
#   4. npm ci when node_modules is missing or older than package-lock.json, then `turbo run build`.
#   5. Local images, built without any registry (deploy/images/): shoal/busybox:1 for tests and
#      shoal/node:<node major> as the base of Shoal's own services.
#
# It prints one "bootstrap: ..." line per step, ends with a summary of what it changed, and fails with
# "bootstrap: error: <reason>" when it cannot go on. Installing packages and starting dockerd need root;
# on a host where both are done, a user in the docker group can run it. It never removes anything it
# did not create.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SHOAL_LOG_PREFIX=bootstrap
# shellcheck source=lib/common.sh
source "$repo/scripts/lib/common.sh"

readonly DOCKERD_LOG=/var/log/shoal-dockerd.log
readonly DOCKERD_START_TIMEOUT_S=60
# The root package.json's engines field: ">=20.19.0 <21 || >=22".
readonly NODE_MIN_20_MINOR=19

SHOAL_CHANGES_FILE=$(mktemp "${TMPDIR:-/tmp}/shoal-bootstrap.XXXXXX")
export SHOAL_CHANGES_FILE
trap 'rm -f "$SHOAL_CHANGES_FILE"' EXIT

docker_answers() {
  have_command docker && docker info >/dev/null 2>&1
}

check_node() {
  have_command node || die "node is not installed; install Node.js 20.19+ (or 22+) and re-run"
  local version major minor
  version=$(node --version)
  IFS=. read -r major minor _ <<<"${version#v}"
  if ((major < 20 || (major == 20 && minor < NODE_MIN_20_MINOR) || major == 21)); then
    die "node $version is too old or unsupported; Shoal needs >= 20.19 (or 22+)"
  fi
  say "node $version found"
}

install_missing_packages() {
  local missing=()
  # An engine that answers (any engine, also via DOCKER_HOST) or an installed dockerd is Docker enough;
  # installing docker.io next to another Docker package would conflict with it.
  if ! docker_answers && ! have_command dockerd; then missing+=(docker.io); fi
  have_command nats-server || missing+=(nats-server)
  have_command nft || missing+=(nftables)
  have_command ip || missing+=(iproute2)
  static_busybox >/dev/null || missing+=(busybox-static)
  have_command protoc || missing+=(protobuf-compiler)

  if ((${#missing[@]} == 0)); then
    say "OS packages already present"
    return
  fi
  say "installing ${missing[*]} (missing)"
  require_root "installing packages"
  have_command apt-get || die "apt-get not found: this script supports Debian and Ubuntu; install ${missing[*]} by hand"
  apt-get update -qq || die "apt-get update failed (see above)"
  # --no-remove: fail rather than let apt remove a conflicting package (busybox for busybox-static,
  # docker-ce for docker.io), since this script never removes what it did not install.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed (see above)"
  record_change "installed ${missing[*]}"
}

ensure_dockerd() {
  if docker_answers; then
    say "dockerd already running"
    return
  fi
  if [[ -S /var/run/docker.sock && ! -w /var/run/docker.sock ]]; then
    die "$(id -un) may not use /var/run/docker.sock; join the docker group or run as root"
  fi
  require_root "starting dockerd"
  have_command dockerd || die "dockerd is not installed and no Docker engine answers"
  have_command docker || die "the docker CLI is missing; install docker.io"
  say "starting dockerd (log: $DOCKERD_LOG)"
  # setsid: the daemon must outlive this script and the terminal or job that ran it. --wait keeps $!
  # alive exactly as long as dockerd, whether or not setsid had to fork.
  setsid --wait dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$! waited=0
  until docker_answers; do
    kill -0 "$pid" 2>/dev/null || die "dockerd exited during start-up; the end of $DOCKERD_LOG:
$(tail -n 20 "$DOCKERD_LOG")"
    ((waited < DOCKERD_START_TIMEOUT_S * 2)) || die "dockerd did not answer within ${DOCKERD_START_TIMEOUT_S}s; the end of $DOCKERD_LOG:
$(tail -n 20 "$DOCKERD_LOG")"
    sleep 0.5
    waited=$((waited + 1))
  done
  record_change "started dockerd"
}

install_and_build() {
  cd "$repo"
  if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "running npm ci (node_modules missing or older than package-lock.json)"
    npm ci --no-audit --no-fund || die "npm ci failed (see above)"
    record_change "installed node_modules (npm ci)"
  else
    say "node_modules up to date"
  fi
  say "building (turbo run build)"
  TURBO_TELEMETRY_DISABLED=1 npx --no-install turbo run build --output-logs=errors-only || die "the build failed (see above)"
}

build_images() {
  "$repo/deploy/images/build-busybox.sh"
  "$repo/deploy/images/build-node.sh"
}

check_node
install_missing_packages
ensure_dockerd
install_and_build
build_images

if [[ -s $SHOAL_CHANGES_FILE ]]; then
  say "done; changed: $(paste -sd ';' "$SHOAL_CHANGES_FILE" | sed 's/;/; /g')"
else
  say "done; nothing needed changing"
fi
