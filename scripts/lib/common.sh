# Helpers shared by Shoal's shell scripts (scripts/, deploy/images/). Source it after `set -euo pipefail`;
# it only defines functions.
#
# Output contract: every line a script prints starts with "$SHOAL_LOG_PREFIX: " (bootstrap.sh exports
# "bootstrap" so the image builders it calls speak with its voice), and failures go to stderr as
# "<prefix>: error: <reason>" with exit status 1.

: "${SHOAL_LOG_PREFIX:=$(basename "$0" .sh)}"

say() {
  printf '%s: %s\n' "$SHOAL_LOG_PREFIX" "$*"
}

die() {
  printf '%s: error: %s\n' "$SHOAL_LOG_PREFIX" "$*" >&2
  exit 1
}

# Reports something this run changed on the host. When SHOAL_CHANGES_FILE is set (bootstrap.sh sets
# it), the change is also appended there so the caller can summarise a whole run.
record_change() {
  say "$*"
  if [[ -n ${SHOAL_CHANGES_FILE:-} ]]; then
    printf '%s\n' "$*" >>"$SHOAL_CHANGES_FILE"
  fi
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "$1 needs root; re-run as root"
}

# True when an executable of that name is on PATH or in the sbin directories, which non-root PATHs
# often omit. (`command -v` alone would also accept a file that is not executable.)
have_command() {
  local found
  found=$(type -P "$1") && [[ -x $found ]] || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]
}

# Prints the path of a statically linked busybox (package busybox-static), or fails. A dynamically
# linked one would not run inside an image that has no shared libraries.
static_busybox() {
  local candidate
  for candidate in /bin/busybox /usr/bin/busybox "$(command -v busybox 2>/dev/null || true)"; do
    # ldd fails on a static executable.
    if [[ -x $candidate ]] && ! ldd "$candidate" >/dev/null 2>&1; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}
