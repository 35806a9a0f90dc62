#!/usr/bin/env bash
# Short runs of every cargo-fuzz target: the pagewire-codec decoders (codec/fuzz) and the
# trace reader of pagewire-bench (bench-harness/fuzz, a crate of its own so that the codec
# targets do not build the harness's dependencies).
#
#   FUZZ_SECONDS=20            seconds per target
#   FUZZ_TARGETS="frame xbzrle bitmap records trace_read"
#   FUZZ_SANITIZER=address     or none (faster to build, finds fewer bugs)
#
# cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no nightly toolchain is needed. New inputs go to a scratch directory; the committed
# seed corpora (FUZZ_CRATE/corpus/TARGET) are read, never written.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
targets="${FUZZ_TARGETS:-frame xbzrle bitmap records trace_read}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

# The fuzz crate holding a target.
crate_of() {
  case "$1" in
    trace_read) echo "$root/bench-harness/fuzz" ;;
    *) echo "$root/codec/fuzz" ;;
  esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  # Unoptimised: cargo-fuzz only drives cargo, and a debug build of it is quicker to make.
  cargo install cargo-fuzz --locked --version 0.13.2 --debug
fi

# One target directory for both fuzz crates, so the codec and the dependencies they share
# are built once.
fuzz_target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz"

scratch=""
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
  cd "$(crate_of "$target")"
  cargo fuzz build --target-dir "$fuzz_target_dir" --sanitizer "$sanitizer" "$target"
  scratch="$(mktemp -d)"
  echo "== fuzz $target for ${seconds}s"
  cargo fuzz run --target-dir "$fuzz_target_dir" --sanitizer "$sanitizer" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536
  rm -rf "$scratch"
done
