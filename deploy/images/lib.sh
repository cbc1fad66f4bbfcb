# Helpers for the image builders in this directory. Source it after `set -euo pipefail`.
#
# Images are imported from a root filesystem tarball (`docker import`), so no registry and no base image
# are needed. Each image carries two labels:
#   shoal.image=1                 marks it as built here (only such images are ever removed by these scripts)
#   shoal.image.content=<digest>  a digest of everything it was built from (binaries, libraries, scripts)
# A builder skips its work when the tag already carries the digest of the current inputs, and rebuilds
# when an input changed (for example after the host's node was upgraded).

# shellcheck source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

have_command docker || die "the docker CLI is missing; run scripts/bootstrap.sh"

# Prints a short digest of the contents of the given files (paths do not matter, order does).
inputs_digest() {
  local file
  for file in "$@"; do
    sha256sum <"$file"
  done | sha256sum | cut -c1-16
}

# True when image $1 exists and was built from inputs with digest $2.
image_current() {
  [[ $(docker image inspect --format '{{index .Config.Labels "shoal.image.content"}}' "$1" 2>/dev/null) == "$2" ]]
}

# Creates a root filesystem skeleton (/etc/passwd and /etc/group with root and nobody, /tmp, /root) in a
# temporary directory removed when the calling script exits, and sets NEW_ROOTFS to its path. Call it in
# the main shell, as `new_rootfs; rootfs=$NEW_ROOTFS`: in a $(...) subshell the trap would fire at once.
new_rootfs() {
  NEW_ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/shoal-rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the trap must remove this very directory
  trap "rm -rf '$NEW_ROOTFS'" EXIT
  mkdir -p "$NEW_ROOTFS"/{etc,tmp,root}
  chmod 1777 "$NEW_ROOTFS/tmp"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$NEW_ROOTFS/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$NEW_ROOTFS/etc/group"
}

# import_rootfs TAG DIGEST ROOTFS [DOCKERFILE-INSTRUCTION...]
# Imports ROOTFS as TAG, with the labels above and the given instructions (e.g. 'CMD ["sh"]'). The image
# TAG named before, if built here and now unused, is removed.
import_rootfs() {
  local tag=$1 digest=$2 rootfs=$3
  shift 3
  local changes=(--change "LABEL shoal.image=1 shoal.image.content=$digest") instruction previous imported
  for instruction in "$@"; do
    changes+=(--change "$instruction")
  done
  previous=$(docker image inspect --format '{{.Id}} {{index .Config.Labels "shoal.image"}}' "$tag" 2>/dev/null || true)
  imported=$(tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . | docker import "${changes[@]}" - "$tag") ||
    die "docker import of $tag failed"
  if [[ $previous == *' 1' && ${previous%% *} != "$imported" ]]; then
    docker image rm "${previous%% *}" >/dev/null 2>&1 ||
      say "kept the previous $tag image ${previous:7:12}: a container or another tag still uses it"
  fi
}

# verify_image TAG EXPECTED COMMAND...: runs COMMAND in a throw-away container of TAG and checks that it
# prints EXPECTED; on a mismatch the image is removed (so the next run rebuilds it) and the script fails.
verify_image() {
  local tag=$1 expected=$2 output
  shift 2
  output=$(docker run --rm --network none --label shoal.image.verify=1 "$tag" "$@" 2>&1) || true
  if [[ $output != "$expected" ]]; then
    docker image rm "$tag" >/dev/null 2>&1 || true
    die "image $tag does not work: expected '$expected', got '$output'; removed it"
  fi
}
