#!/usr/bin/env bash
# Prints the path of a Debian bookworm minbase root (debootstrap --variant=minbase:
# no compiler, no libc6-dev, no libc.so link script), built once from the machine's
# configured Debian mirror and cached outside the clone. Concurrent callers wait
# on a lock; only a complete root (marker file) is reused. Exit 1 with the reason
# on stderr when it cannot be built here (then the tests fall back to a mount namespace).
set -euo pipefail
cache=${POSTBOX_TEST_CACHE:-/var/cache/postbox-test}
root=$cache/bookworm-minbase
done_marker=$root/.postbox-minbase-complete

[ -e "$done_marker" ] && { echo "$root"; exit 0; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/bookworm-minbase.lock"
flock 9
[ -e "$done_marker" ] && { echo "$root"; exit 0; }

# The first Debian mirror apt uses: deb822 (*.sources) or one-line sources.list entries.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { print $2 }' | grep -v security | head -1 || true)
[ -n "$mirror" ] || mirror=$(grep -hE '^deb +(\[[^]]*\] +)?https?://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
  | grep -v security | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{ print $1; exit }' || true)
[ -n "$mirror" ] || { echo "no Debian mirror configured in /etc/apt/sources.list(.d)" >&2; exit 1; }

work=$(mktemp -d "$cache/bookworm-minbase.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! debootstrap --variant=minbase bookworm "$work" "$mirror" > "$work.log" 2>&1; then
  echo "debootstrap --variant=minbase bookworm from $mirror failed: $(tail -1 "$work.log")" >&2
  rm -f "$work.log"
  exit 1
fi
rm -f "$work.log"
chmod 0755 "$work" # mktemp made it 0700: the tests run inside it as another user
touch "$work/.postbox-minbase-complete"
rm -rf "$root"
mv "$work" "$root"
trap - EXIT
echo "$root"
