//! Sets `cfg(has_chromium)` when Debian's headless browser is installed, so sim/tests/browser/ runs
//! where it can and reports itself ignored (never passes) where it cannot.

use std::path::Path;

/// What tests/browser/ starts: the packages `chromium` and `chromium-driver`.
const BROWSER: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(has_chromium)");
    let mut found = true;
    for path in BROWSER.map(Path::new) {
        // Watching a missing file would rerun this (and rebuild the crate) on every build; its
        // directory changes when the package installs it.
        let watched = if path.exists() {
            path
        } else {
            Path::new("/usr/bin")
        };
        println!("cargo::rerun-if-changed={}", watched.display());
        found &= path.exists();
    }
    if found {
        println!("cargo::rustc-cfg=has_chromium");
    }
}
