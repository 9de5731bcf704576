#!/bin/sh
# Install a downloaded postbox release: checks the archive against SHA256SUMS,
# then puts the binary in PREFIX/bin and the man page in PREFIX/share/man/man1.
#   sh install.sh [--prefix DIR] postbox-<version>-linux-<arch>.xz
# SHA256SUMS (and postbox.1) are looked for beside the archive. Default prefix: /usr/local.
set -eu
prog=install.sh
die() { echo "$prog: $*" >&2; exit 1; }

prefix=/usr/local
archive=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (usage: install.sh [--prefix DIR] ARCHIVE)" ;;
    *) [ -z "$archive" ] || die "one archive at a time"; archive=$1; shift ;;
  esac
done
[ -n "$archive" ] || die "no archive given (usage: install.sh [--prefix DIR] postbox-<version>-linux-<arch>.xz)"
[ -f "$archive" ] || die "cannot read $archive: no such file"
command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"
command -v xz >/dev/null || die "xz is missing: install xz-utils"

dir=$(dirname "$archive")
name=$(basename "$archive")
sums=$dir/SHA256SUMS
[ -f "$sums" ] || die "no SHA256SUMS beside $archive: download it from the same release"

# verify NAME: its line in SHA256SUMS must match the file's own sum
verify() {
  want=$(awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
  [ -n "$want" ] || die "$1 is not listed in $sums: not part of this release"
  got=$(sha256sum < "$dir/$1" | cut -d' ' -f1)
  [ "$want" = "$got" ] || die "checksum mismatch for $1: expected $want, got $got; the download is damaged or not the release's: nothing installed"
}
verify "$name"
page=
if [ -f "$dir/postbox.1" ]; then verify postbox.1; page=$dir/postbox.1; fi

case $name in
  *-linux-x64.xz) want_arch=x86_64 ;;
  *-linux-arm64.xz) want_arch=aarch64 ;;
  *) want_arch= ;;
esac
arch=$(uname -m)
[ -z "$want_arch" ] || [ "$want_arch" = "$arch" ] || echo "$prog: note: $name is for $want_arch, this machine is $arch" >&2

mkdir -p "$prefix/bin"
tmp=$prefix/bin/.postbox.$$
trap 'rm -f "$tmp"' EXIT
xz -dc "$archive" > "$tmp" || die "cannot unpack $archive"
chmod 755 "$tmp"
mv -f "$tmp" "$prefix/bin/postbox" # rename: a running postbox keeps its old file
echo "$prog: installed $prefix/bin/postbox"
if [ -n "$page" ]; then
  mkdir -p "$prefix/share/man/man1"
  cp "$page" "$prefix/share/man/man1/postbox.1"
  chmod 644 "$prefix/share/man/man1/postbox.1"
  echo "$prog: installed $prefix/share/man/man1/postbox.1"
else
  echo "$prog: note: no postbox.1 beside $archive: the man page is not installed" >&2
fi
