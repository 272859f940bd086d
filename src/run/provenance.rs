//! Provenance: where a run's numbers came from. Every manifest records the build (git commit
//! and dirty flag, crate version, enabled features), the machine (host name, cores), the
//! radiation kernel that ran, the full command line, and content hashes (FNV-1a 64) of the
//! data files, the edge list and every restored checkpoint.

use std::path::{Path, PathBuf};

use crate::scene::{DataSource, GraphSource, Scene};

/// The git commit the binary was built from ("unknown" outside a git checkout).
pub const GIT_COMMIT: &str = env!("NEUROGRAPH_GIT_COMMIT");

/// Whether tracked files differed from [`GIT_COMMIT`] at build time: "true", "false" or
/// "unknown".
pub const GIT_DIRTY: &str = env!("NEUROGRAPH_GIT_DIRTY");

/// The cargo features this build was compiled with.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "table-activation") {
        f.push("table-activation");
    }
    f
}

/// The host's name ("unknown" when it cannot be read).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The content hash of a file, as 16 hex digits (`None` when it cannot be read).
pub fn file_hash(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| format!("{:016x}", crate::hash::fnv1a64(&bytes)))
}

/// The files a scene reads (data files, edge list), each with its content hash.
pub fn input_files(scene: &Scene) -> Vec<(String, Option<String>)> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let DataSource::Idx { dir } = &scene.data.source {
        files.extend(crate::data::idx_files(Path::new(dir)));
    }
    if let GraphSource::EdgeList { path } = &scene.graph {
        files.push(PathBuf::from(path));
    }
    files
        .into_iter()
        .map(|p| (p.display().to_string(), file_hash(&p)))
        .collect()
}

/// The provenance block of a manifest; `backend` is the radiation kernel the world runs and
/// `checkpoints` the restored checkpoints with their hashes.
pub fn block(
    scene: &Scene,
    backend: &str,
    checkpoints: &[(String, Option<String>)],
) -> serde_json::Value {
    let data = match &scene.data.source {
        DataSource::Synthetic { train, test } => {
            format!("embedded synthetic digits ({train} train, {test} test)")
        }
        other => format!("{other:?}"),
    };
    let hashed = |files: &[(String, Option<String>)]| -> Vec<serde_json::Value> {
        files
            .iter()
            .map(|(path, hash)| serde_json::json!({"path": path, "fnv1a64": hash}))
            .collect()
    };
    serde_json::json!({
        "git_commit": GIT_COMMIT,
        "git_dirty": GIT_DIRTY,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "features": features(),
        "radiation_backend": backend,
        "host": host_name(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "data": data,
        "input_files": hashed(&input_files(scene)),
        "restored_checkpoints": hashed(checkpoints),
    })
}
