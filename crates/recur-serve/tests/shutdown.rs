//! Graceful shutdown: the server stops accepting, finishes the requests in flight, then
//! returns; SIGTERM does the same (this file is its own process, so the signal reaches only
//! this test).

mod common;

use std::sync::Arc;
use std::time::Duration;

use recur_serve::{App, Batching, Limits};
use serde_json::json;

/// A 20-letter word en-g2p's lexicon (CMUdict) lacks, so that the model decodes it: the slow
/// requests below must reach the model.
const NOT_IN_CMUDICT: &str = "zorbulentifragistics";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_stops() {
    let app =
        Arc::new(App::load(&common::specs(), Limits::default(), Batching::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(recur_serve::serve(
        listener,
        app,
        recur_serve::shutdown_signal(),
    ));
    // Let the signal handler be installed before the signal is sent.
    let mut c = recur_serve::client::Client::new(addr);
    assert_eq!(c.get("/health").await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A slow request in flight (about a second of decoding).
    let slow = json!({"model":"en-g2p","inputs": vec![NOT_IN_CMUDICT; 16], "beam": 8});
    let mut c2 = recur_serve::client::Client::new(addr);
    let in_flight = tokio::spawn(async move { c2.post_json("/v1/translate", &slow).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = tokio::time::timeout(Duration::from_secs(60), in_flight)
        .await
        .expect("the in-flight request finishes")
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outputs"].as_array().unwrap().len(), 16);
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server returns after SIGTERM")
        .unwrap()
        .unwrap();
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
