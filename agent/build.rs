//! Records the commit the binary is built from as `AUTOARCH_COMMIT` (the benchmark's report
//! names it): `git rev-parse --short HEAD`, with `-dirty` when tracked files have changes, or
//! `unknown` outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{hash}{}", if dirty { "-dirty" } else { "" })
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=AUTOARCH_COMMIT={commit}");
    // Run again when HEAD moves (a checkout, a commit), the index changes, or the sources do.
    let mut watched = vec!["src".to_string(), "build.rs".to_string()];
    for path in ["HEAD", "index"] {
        watched.extend(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    for path in watched {
        // A path that does not exist would make cargo run this on every build.
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
