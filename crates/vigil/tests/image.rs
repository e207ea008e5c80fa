//! The container image the Kubernetes manifests name (`vigil:latest`) is built here, without a
//! registry: `scripts/image` builds it with Debian's podman from the binary under test, saves
//! and unpacks it, runs the binary from the unpacked root (chroot) and checks the user,
//! entrypoint, default arguments and `/prometheus`'s owner; the size it prints is checked to be
//! there. The manifests, in turn, must rely on the image's entrypoint (`args:`, no `command:`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_image_builds_and_runs_from_its_unpacked_root() {
    let tag = format!("localhost/vigil-test:{}", std::process::id());
    let out = Command::new(repo().join("scripts/image"))
        .arg("--binary")
        .arg(vigil_bin())
        .args(["--tag", &tag])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("image check passed"), "{stdout}");
    assert!(
        stdout.contains("MB as stored and pulled") && stdout.contains("MB unpacked"),
        "{stdout}"
    );
    // Removed again: nothing left in podman's store.
    let left = Command::new("podman")
        .args(["image", "exists", &tag])
        .status()
        .unwrap();
    assert!(!left.success(), "{tag} left behind");
}

#[test]
fn the_manifests_use_the_images_entrypoint() {
    let mut files = vec![repo().join("deploy/kubernetes")];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() != "image: vigil:latest" {
                continue;
            }
            // The container's other keys: the lines at this indentation until the block ends.
            let indent = l.len() - l.trim_start().len();
            let keys: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|x| x.trim().is_empty() || x.len() - x.trim_start().len() >= indent)
                .filter(|x| x.len() - x.trim_start().len() == indent)
                .filter_map(|x| x.trim().split(':').next())
                .collect();
            assert!(
                !keys.contains(&"command"),
                "{}: a vigil container sets command:, bypassing the image's entrypoint",
                p.display()
            );
            assert!(keys.contains(&"args"), "{}: no args: {keys:?}", p.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "vigil containers found: {checked}");
}
