#!/usr/bin/env bash
# Short runs of every cargo-fuzz target of pagewire-codec (codec/fuzz).
#
#   FUZZ_SECONDS=20            seconds per target
#   FUZZ_TARGETS="frame xbzrle bitmap records"
#   FUZZ_SANITIZER=address     or none (faster to build, finds fewer bugs)
#
# cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no nightly toolchain is needed. New inputs go to a scratch directory; the committed
# seed corpora (codec/fuzz/corpus/TARGET) are read, never written.
set -euo pipefail
cd "$(dirname "$0")/../codec/fuzz"
seconds="${FUZZ_SECONDS:-20}"
targets="${FUZZ_TARGETS:-frame xbzrle bitmap records}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

scratch=""
trap 'rm -rf "$scratch"' EXIT
cargo fuzz build --sanitizer "$sanitizer"
for target in $targets; do
  scratch="$(mktemp -d)"
  echo "== fuzz $target for ${seconds}s"
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536
  rm -rf "$scratch"
done
