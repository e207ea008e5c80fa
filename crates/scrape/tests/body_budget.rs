//! The budget of all scrape bodies in flight, against real targets on loopback: a gzip body
//! that expands without bound and a target that sends without end each fail their own scrape
//! with an error naming the bound, the process's memory stays far below what they sent, and
//! the next scrape of an ordinary target succeeds. (A test binary of its own: the budget is
//! process-wide.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use vigil_scrape::Health;
use vigil_scrape::scrape_loop::ScrapeLoop;
use vigil_storage::{MemoryStorage, Storage};

const BUDGET: usize = 32 << 20;

/// Serve to every request: `head` then `body()` (which may write without end).
fn server(head: String, body: impl Fn(&mut std::net::TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = vec![0u8; 8192];
            let _ = c.read(&mut buf);
            let _ = c.write_all(head.as_bytes());
            body(&mut c);
        }
    });
    port
}

fn scrape_loop(port: u16) -> ScrapeLoop {
    // A long timeout: the stalled target below is held until the test releases it.
    let yaml =
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 1m\n    scrape_timeout: 1m\n";
    let cfg = vigil_config::Config::parse(yaml, Path::new("/tmp")).expect("config");
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    ScrapeLoop::for_target(
        cfg.scrape_configs[0].clone(),
        storage,
        &format!("127.0.0.1:{port}"),
    )
    .expect("loop")
}

fn peak_rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn bodies_past_the_budget_fail_their_scrape_and_nothing_else() {
    vigil_scrape::body_pool::set_budget(BUDGET);
    // 1 GiB of text in a gzip body of about 1 MiB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = "# a comment line that compresses to nothing\n".repeat(1 << 14);
    for _ in 0..(1usize << 30) / block.len() {
        e.write_all(block.as_bytes()).unwrap();
    }
    let bomb = Arc::new(e.finish().unwrap());
    assert!(bomb.len() < 8 << 20, "{}", bomb.len());
    let gz = server(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bomb.len()
        ),
        move |c| {
            let _ = c.write_all(&bomb);
        },
    );
    // A target that sends until the scraper hangs up.
    let endless = server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n"
            .into(),
        |c| {
            let line = "x 1\n".repeat(1 << 16);
            while c.write_all(line.as_bytes()).is_ok() {}
        },
    );
    let fine_body = "# TYPE a gauge\na 42\n";
    let fine = server(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fine_body}",
            fine_body.len()
        ),
        |_| {},
    );
    let before = peak_rss();
    for port in [gz, endless] {
        let mut lp = scrape_loop(port);
        lp.scrape_and_report().await;
        let st = lp.status();
        assert_eq!(st.health, Health::Down, "{port}");
        assert!(
            st.last_error.contains("vigil's bound") && st.last_error.contains(&BUDGET.to_string()),
            "{}",
            st.last_error
        );
        // One body alone stops at half the budget (plus the chunk that would pass it).
        let reached: usize = st
            .last_error
            .split("it reached ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(reached <= BUDGET / 2 + (1 << 20), "{}", st.last_error);
        assert_eq!(
            vigil_scrape::body_pool::held(),
            0,
            "the budget is given back"
        );
    }
    assert_eq!(
        vigil_scrape::metrics::BODY_BUDGET.get(),
        2,
        "both failures counted"
    );
    // Far less than the gigabyte sent: what the bodies held stayed near the budget.
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < 4 * BUDGET, "the process grew by {grew} bytes");
    let mut lp = scrape_loop(fine);
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);

    // One body holds at most half the budget: a target that sends 14 MiB and then stalls
    // until its timeout leaves room for another target's 10 MiB body meanwhile.
    // Held until the other target's scrape is done (released below), however long that
    // takes on a loaded machine.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let stall = server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n"
            .into(),
        move |c| {
            let _ = c.write_all("# padding\n".repeat((14 << 20) / 10).as_bytes());
            let _ = released
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(60));
        },
    );
    let big_body: String = (0..500_000)
        .map(|i| format!("big{{n=\"{i:07}\"}} 1\n"))
        .collect();
    assert!(big_body.len() > 8 << 20 && big_body.len() < 12 << 20);
    let big = server(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n{big_body}"
        ),
        |_| {},
    );
    let (mut slow, mut other) = (scrape_loop(stall), scrape_loop(big));
    let second = async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        other.scrape_and_report().await;
        assert!(
            vigil_scrape::body_pool::held() > 0,
            "the stalled body is still held"
        );
        release.send(()).unwrap();
    };
    tokio::join!(slow.scrape_and_report(), second);
    let st = other.status();
    assert_eq!(st.health, Health::Up, "{}", st.last_error);
    assert_eq!(st.last_samples, 500_000);
    assert_eq!(vigil_scrape::body_pool::held(), 0);
}
