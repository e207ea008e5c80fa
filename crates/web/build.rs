//! Builds the web UI (`ui/`, TypeScript bundled by esbuild) with the machine's Node.js when its
//! output is missing or older than its sources, and embeds the result: `cargo build` on a fresh
//! machine yields a binary with the UI inside, no manual step and no built assets committed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn newest(p: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    if let Ok(m) = std::fs::metadata(p) {
        if m.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                t = t.max(newest(&e.path()));
            }
        } else if let Ok(mt) = m.modified() {
            t = mt;
        }
    }
    t
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("building vigil's UI needs Node.js and npm ({what}: {e}); install them (Debian: apt-get install nodejs npm)")
    });
    assert!(status.success(), "building vigil's UI: {what} failed");
}

/// A directory lock, removed when dropped; one left behind by a killed build for over ten
/// minutes is taken over.
struct Lock(PathBuf);

impl Lock {
    fn take(path: PathBuf) -> Lock {
        let start = std::time::Instant::now();
        loop {
            if std::fs::create_dir(&path).is_ok() {
                return Lock(path);
            }
            let stale = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(600));
            if stale || start.elapsed() > std::time::Duration::from_secs(900) {
                let _ = std::fs::remove_dir(&path);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn main() {
    let ui = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../ui");
    let sources = ["src", "build.mjs", "package.json", "package-lock.json"];
    for s in sources {
        println!("cargo:rerun-if-changed={}", ui.join(s).display());
    }
    let dist = ui.join("dist");
    let built = std::fs::metadata(dist.join("app.js"))
        .and_then(|m| m.modified())
        .ok();
    let src_time = sources.iter().map(|s| newest(&ui.join(s))).max().unwrap();
    // Builds of several profiles may run this at once: one at a time installs and bundles
    // (a directory is the lock: creating it is atomic), and each checks again once it holds it.
    let _lock = (built.is_none_or(|b| b < src_time)).then(|| Lock::take(ui.join(".build-lock")));
    let built = std::fs::metadata(dist.join("app.js"))
        .and_then(|m| m.modified())
        .ok();
    if built.is_none_or(|b| b < src_time) {
        // npm records what it installed in node_modules/.package-lock.json: reinstall when the
        // lock file is newer (a dependency changed) or nothing was installed.
        let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let installed = mtime(ui.join("node_modules/.package-lock.json"));
        let wanted = mtime(ui.join("package-lock.json"));
        if !ui.join("node_modules/esbuild").exists() || installed < wanted {
            run(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&ui),
                "npm ci",
            );
        }
        run(
            Command::new("node").arg("build.mjs").current_dir(&ui),
            "node build.mjs",
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // app.js and app.css are embedded gzipped (level 9, once, here): browsers take them as they
    // are, which makes the binary and the image smaller and the first page load shorter. The
    // page itself stays plain: it is edited per request (route prefix, title).
    let mut code = String::from(
        "/// The UI's files: (name, content type, gzipped, bytes).\npub static ASSETS: &[(&str, &str, bool, &[u8])] = &[\n",
    );
    for (name, ctype, gzip) in [
        ("index.html", "text/html; charset=utf-8", false),
        ("app.js", "text/javascript; charset=utf-8", true),
        ("app.css", "text/css; charset=utf-8", true),
    ] {
        let bytes = std::fs::read(dist.join(name))
            .unwrap_or_else(|e| panic!("UI asset {name} missing after the build: {e}"));
        let (dst, bytes) = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&bytes).unwrap();
            (out.join(format!("{name}.gz")), enc.finish().unwrap())
        } else {
            (out.join(name), bytes)
        };
        std::fs::write(&dst, bytes).unwrap();
        code.push_str(&format!(
            "    ({name:?}, {ctype:?}, {gzip}, include_bytes!({:?})),\n",
            dst.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).unwrap();
}
