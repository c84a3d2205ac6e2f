//! A server on 127.0.0.1:0 for one test, stopped when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use recur_serve::client::Client;
use recur_serve::{App, Batching, Limits, ModelSpec};

pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Starts the graceful shutdown; `done` then finishes.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn specs() -> Vec<ModelSpec> {
    vec![
        ModelSpec::parse("hi-translit").unwrap(),
        ModelSpec::parse("en-g2p").unwrap(),
    ]
}

pub async fn start(limits: Limits, batching: Batching) -> TestServer {
    let app = Arc::new(App::load(&specs(), limits, batching).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(recur_serve::serve(listener, app.clone(), async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        app,
        stop: Some(tx),
        done: Some(done),
    }
}

pub async fn start_default() -> TestServer {
    start(Limits::default(), Batching::default()).await
}

/// Source words of the Dakshina Hindi test lexicon (column 1), the first `n` distinct ones.
pub fn hindi_words(n: usize) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/dakshina_hi/lexicons/hi.translit.sampled.test.tsv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(w) = line.split('\t').nth(1) {
            if !out.iter().any(|x| x == w) {
                out.push(w.to_string());
            }
        }
        if out.len() == n {
            break;
        }
    }
    out
}
