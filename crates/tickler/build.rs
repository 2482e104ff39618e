//! Embeds the shipped configuration (`config/`: tickler.toml, policies, templates, the demo
//! seed) so that the binary runs with nothing beside it, and records the commit it was built
//! from for `tickler --version`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let config = root.join("config");
    println!("cargo:rerun-if-changed={}", config.display());
    let mut out = String::new();
    embed(&mut out, "CONFIG_FILE", &config.join("tickler.toml"));
    embed_dir(&mut out, "POLICIES", &config.join("policies"));
    embed_dir(&mut out, "TEMPLATES", &config.join("templates"));
    embed_dir(&mut out, "DEMO_SEEDS", &config.join("learning"));
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).unwrap();
    println!("cargo:rustc-env=TICKLER_COMMIT={}", commit(&root));
}

fn embed(out: &mut String, name: &str, file: &Path) {
    let file = file.canonicalize().unwrap();
    writeln!(
        out,
        "pub const {name}: &str = include_str!({:?});",
        file.display()
    )
    .unwrap();
}

/// `(path relative to dir, text)` of every file under `dir`, in path order.
fn embed_dir(out: &mut String, name: &str, dir: &Path) {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    writeln!(out, "pub const {name}: &[(&str, &str)] = &[").unwrap();
    for file in files {
        let relative = file
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let absolute = file.canonicalize().unwrap();
        writeln!(
            out,
            "    ({relative:?}, include_str!({:?})),",
            absolute.display()
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The commit checked out (edits not yet committed are not told apart); `unknown` outside git.
fn commit(root: &Path) -> String {
    let git = root.join(".git");
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        if git.join(watched).exists() {
            println!("cargo:rerun-if-changed={}", git.join(watched).display());
        }
    }
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    run(&["rev-parse", "--short=12", "HEAD"])
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
