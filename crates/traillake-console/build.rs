//! Bundles the console (`console/` at the workspace's root) into `OUT_DIR`: its npm packages are
//! installed from `package-lock.json` with `npm ci` in `OUT_DIR` (never in the source tree), then
//! esbuild bundles `src/main.js` and what it imports into one minified script. The page and the
//! styles are copied as they are. Node.js and npm must be on the PATH.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let console = manifest.join("../../console");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in ["package.json", "package-lock.json", "src"] {
        println!("cargo:rerun-if-changed={}", console.join(watched).display());
    }

    let work = out.join("npm");
    std::fs::create_dir_all(&work).expect("OUT_DIR is writable");
    let lock = std::fs::read(console.join("package-lock.json")).expect("console/package-lock.json is readable");
    let installed = std::fs::read(work.join("package-lock.json")).ok();
    if installed.as_deref() != Some(lock.as_slice()) || !work.join("node_modules").exists() {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(console.join(file), work.join(file)).expect("the console's npm manifests are readable");
        }
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&work),
            "npm ci",
        );
    }
    run(
        Command::new(work.join("node_modules/.bin/esbuild"))
            .arg(console.join("src/main.js"))
            .args([
                "--bundle",
                "--minify",
                "--format=esm",
                "--target=es2022",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={}", out.join("console.js").display()))
            // Imports are resolved in the packages installed above.
            .env("NODE_PATH", work.join("node_modules")),
        "esbuild",
    );
    for file in ["index.html", "style.css"] {
        std::fs::copy(console.join("src").join(file), out.join(file)).expect("the console's page is readable");
    }
}

fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|error| {
        panic!(
            "{what} could not run ({error}): building traillake's console needs Node.js and npm on the PATH \
             (Debian: apt-get install nodejs npm)"
        )
    });
    assert!(
        status.success(),
        "{what} failed ({status}) while building traillake's console"
    );
}
