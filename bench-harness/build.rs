//! Builds the uffd preload library (`preload/uffd_preload.c`) as a shared object in `OUT_DIR`;
//! the recorder embeds it (see `src/recorder/uffd/preload.rs`). On other systems than Linux an
//! empty file stands in for it.

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "preload/uffd_preload.c";
const LIBRARY: &str = "libpagewire_uffd_preload.so";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join(LIBRARY);
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        std::fs::write(&library, b"").expect("writing the placeholder library");
        return;
    }
    // The `cc` crate finds the C compiler for the target (CC, CFLAGS, cross set-ups); the
    // shared-object flags are added here because `cc` itself builds static archives.
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let mut command: Command = compiler.to_command();
    command
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&library)
        .arg(SOURCE);
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("running the C compiler for {SOURCE}: {error}"));
    assert!(status.success(), "compiling {SOURCE} failed ({status})");
}
