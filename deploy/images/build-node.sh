#!/usr/bin/env bash
# Builds shoal/node:<major> (shoal/node:20 on a Node 20 host), the base image for Shoal's own services,
# without a registry: the host's node binary at /usr/local/bin/node (the entrypoint), the shared
# libraries ldd lists for it at their host paths, the dynamic loader, /etc/passwd, /etc/group and /tmp.
# Skips the work when the image is already built from the same node, libraries and scripts (see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_command node || die "node is not installed; install Node.js >= 20.19 first"
node_binary=$(readlink -f "$(command -v node)")
node_version=$("$node_binary" --version)
major=${node_version#v}
major=${major%%.*}
readonly TAG=shoal/node:$major

# ldd lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and, for the loader,
# "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file and is skipped.
mapfile -t libraries < <(ldd "$node_binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
((${#libraries[@]} > 0)) || die "ldd lists no libraries for $node_binary; a statically linked node is not supported"
digest=$(inputs_digest "$node_binary" "${libraries[@]}" "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/lib.sh")
if image_current "$TAG" "$digest"; then
  say "image $TAG already present"
  exit 0
fi

say "building image $TAG from $node_binary ($node_version) and ${#libraries[@]} libraries"
new_rootfs
rootfs=$NEW_ROOTFS
install -D -m 0755 "$node_binary" "$rootfs/usr/local/bin/node"
for library in "${libraries[@]}"; do
  # -L: copy the file a versioned symlink (libstdc++.so.6 -> libstdc++.so.6.0.30) points to, under the link's name.
  mkdir -p "$rootfs$(dirname "$library")"
  cp -L "$library" "$rootfs$library"
done

import_rootfs "$TAG" "$digest" "$rootfs" 'ENTRYPOINT ["/usr/local/bin/node"]'
verify_image "$TAG" "$node_version" -e 'console.log(process.version)'
record_change "built image $TAG"
