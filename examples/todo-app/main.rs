//! The instrumented to-do app of chapter 14's stack on its own, as the sidecar-stack test runs
//! it: the app itself is `vigil demo`'s (`crates/vigil/src/demo/todo.rs`).
//!
//! `cargo run -p vigil --example todo-app -- [LISTEN]` (default `127.0.0.1:8080`): `GET /` lists
//! items, `POST /new` with a form field `item` adds one, `GET /metrics` serves the exposition.

#[allow(dead_code)]
#[path = "../../crates/vigil/src/demo/todo.rs"]
mod todo;

use std::sync::Arc;

#[tokio::main]
async fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = Arc::new(todo::App::new(Arc::new(todo::Store::default())));
    let l = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("listen on {listen}: {e}"));
    axum::serve(l, todo::router(app)).await.expect("serve");
}
