#!/usr/bin/env bash
# Builds shoal/busybox:1, the small image Shoal's tests run (see @shoal/testkit's TEST_IMAGE), without a
# registry: the host's static busybox at /bin/busybox, a symlink for each of its applets, /etc/passwd
# and /etc/group with root and nobody, and /tmp. Default command: sh. Skips the work when the image is
# already built from the same busybox and scripts (see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly TAG=shoal/busybox:1

busybox=$(static_busybox) || die "no statically linked busybox found; install busybox-static (scripts/bootstrap.sh does)"
digest=$(inputs_digest "$busybox" "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/lib.sh")
if image_current "$TAG" "$digest"; then
  say "image $TAG already present"
  exit 0
fi

say "building image $TAG from $busybox"
new_rootfs
rootfs=$NEW_ROOTFS
install -D -m 0755 "$busybox" "$rootfs/bin/busybox"
# --list-full names each applet with its usual directory (bin/sh, sbin/ip, usr/bin/nc, ...). Absolute
# links resolve inside the container's root, where busybox is /bin/busybox.
while read -r applet; do
  [[ $applet == bin/busybox ]] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -s /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)

import_rootfs "$TAG" "$digest" "$rootfs" 'CMD ["sh"]'
verify_image "$TAG" ok sh -c 'echo ok'
record_change "built image $TAG"
