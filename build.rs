//! Records the git commit the binary was built from, for run manifests (provenance): the
//! commit and whether tracked files differed from it, or "unknown" outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty = commit.as_ref().and_then(|_| {
        git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())
    });
    println!(
        "cargo:rustc-env=NEUROGRAPH_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=NEUROGRAPH_GIT_DIRTY={}",
        dirty.map_or("unknown", |d| if d { "true" } else { "false" })
    );
    // Rebuild when the checkout moves or its index changes (a commit, a checkout, an add).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={dir}/{file}");
        }
    }
    // And when a tracked source changes, which may flip the dirty flag without touching the
    // index.
    for path in ["build.rs", "Cargo.toml", "src", "benches", "scenes"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
