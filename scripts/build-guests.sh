#!/usr/bin/env bash
# Rebuild the built-in guests (guests/*) into WASI 0.2 components (or wasip1 core
# modules where guests/NAME/CORE says why) and commit-ready
# files: guests/NAME/NAME.wasm plus guests/NAME/SOURCE_HASH, the hash the test
# `guest_wasm_files_match_their_sources` checks. Needs the guest toolchain:
#   ../shared/tools/guest-toolchain.sh   (once, ~5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${MINKE_SHARED:-../shared}
"$shared/tools/build-guest.sh" guests
# Command modules wrap every export in constructor calls; cabi_realloc must not be
# (see scripts/unwrap_realloc.py): unwrap it and make the components again.
adapters=/usr/local/share/wasi-adapters/48.0.8
for core in guests/target/wasm32-wasip1/release/*.wasm; do
  name=$(basename "$core" .wasm)
  [ -f "guests/$name/Cargo.toml" ] && [ ! -f "guests/$name/CORE" ] || continue
  wasm-tools print "$core" -o "/tmp/$name.core.wat"
  if [ "$(python3 scripts/unwrap_realloc.py "/tmp/$name.core.wat" "/tmp/$name.fixed.wat")" != 0 ]; then
    wasm-tools parse "/tmp/$name.fixed.wat" -o "/tmp/$name.fixed.wasm"
    wasm-tools component new "/tmp/$name.fixed.wasm" \
      --adapt "wasi_snapshot_preview1=$adapters/wasi_snapshot_preview1.${GUEST_ADAPTER:-command}.wasm" \
      -o "guests/target/wasm32-wasip2/release/$name.wasm"
    echo "unwrapped cabi_realloc in $name"
  fi
  rm -f "/tmp/$name.core.wat" "/tmp/$name.fixed.wat" "/tmp/$name.fixed.wasm"
done
for dir in guests/*/; do
  name=$(basename "$dir")
  [ -f "$dir/Cargo.toml" ] || continue
  if [ -f "$dir/CORE" ]; then
    # See guests/NAME/CORE: this guest ships as the wasip1 core module.
    cp "guests/target/wasm32-wasip1/release/$name.wasm" "$dir/$name.wasm"
  else
    cp "guests/target/wasm32-wasip2/release/$name.wasm" "$dir/$name.wasm"
  fi
  python3 scripts/guest_hash.py "$name" > "$dir/SOURCE_HASH"
  echo "built $dir$name.wasm ($(wc -c < "$dir/$name.wasm") bytes, $(cat "$dir/SOURCE_HASH"))"
done
