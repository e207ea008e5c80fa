//! The demo's load generator (the chapter's `loadgen.sh`): the to-do list through its proxy,
//! a few times a second, adding an item now and then, and the numbers API twice a second.

use std::sync::Arc;
use std::time::Duration;

use super::apps::Shared;

pub async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let proxies = shared.proxies.read().clone();
        if !proxies.is_empty() {
            let to = proxies[n as usize % proxies.len()];
            if n.is_multiple_of(5) {
                let _ = shared
                    .http
                    .post(format!("http://{to}/new"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(format!("item=task+{n}"))
                    .send()
                    .await;
            } else {
                let _ = shared.http.get(format!("http://{to}/")).send().await;
            }
        }
        let numbers = shared.numbers.read().clone();
        if n.is_multiple_of(2) && !numbers.is_empty() {
            let to = numbers[(n / 2) as usize % numbers.len()];
            let _ = shared.http.get(format!("http://{to}/rng")).send().await;
        }
    }
}
