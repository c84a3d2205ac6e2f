//! The endpoint contract, the limits and the errors, against a server on 127.0.0.1:0.

mod common;

use std::time::Duration;

use recur::transducer::Transducer;
use recur_serve::{Batching, Limits};
use serde_json::json;

/// A 20-letter word en-g2p's lexicon (CMUdict) lacks, so that the model decodes it: the slow
/// requests below must reach the model.
const NOT_IN_CMUDICT: &str = "zorbulentifragistics";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_models_openapi_metrics_and_demo() {
    let s = common::start_default().await;
    let mut c = s.client();
    let r = c.get("/health").await.unwrap();
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = c.get("/v1/models").await.unwrap();
    assert_eq!(r.status, 200);
    let names: Vec<String> = r.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(!m["summary"].as_str().unwrap().is_empty());
            m["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, ["hi-translit", "en-g2p"]);
    let r = c.get("/openapi.json").await.unwrap();
    assert_eq!(r.status, 200);
    let spec = r.json();
    assert_eq!(spec["openapi"], "3.0.3");
    let req = &spec["components"]["schemas"]["TranslateRequest"]["properties"];
    assert_eq!(req["model"]["enum"], json!(["hi-translit", "en-g2p"]));
    assert_eq!(req["inputs"]["maxItems"], 64);
    for p in [
        "/health",
        "/v1/models",
        "/v1/translate",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        assert!(
            spec["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI file"
        );
    }
    let r = c.get("/").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("id=\"heatmap\""));
    // One translate so that the per-model series exist.
    let body = json!({"model": "hi-translit", "inputs": ["ghar"]});
    assert_eq!(
        c.post_json("/v1/translate", &body).await.unwrap().status,
        200
    );
    let r = c.get("/metrics").await.unwrap();
    assert_eq!(r.status, 200);
    let m = r.text();
    for needle in [
        "recur_http_requests_total{path=\"/v1/translate\",model=\"hi-translit\",status=\"200\"} 1",
        "recur_http_request_duration_seconds_bucket{path=\"/v1/translate\",model=\"hi-translit\",le=\"+Inf\"} 1",
        "recur_batch_requests_count{model=\"hi-translit\"} 1",
        "recur_queue_depth{model=\"en-g2p\"} 0",
        "recur_tokens_per_second{model=\"hi-translit\",window=\"all\"}",
        "recur_output_tokens_total{model=\"hi-translit\"} 2",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translate_contract_and_cli_defaults() {
    let s = common::start_default().await;
    let mut c = s.client();
    let t = Transducer::load("hi-translit").unwrap();
    let body = json!({"model":"hi-translit","inputs":["ghar","kitaab"],"beam":4,"nbest":2,"sentences":false,"attention":false});
    let r = c.post_json("/v1/translate", &body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "hi-translit");
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0]["input"], "ghar");
    assert_eq!(outs[0]["hypotheses"][0]["text"], "घर");
    assert_eq!(outs[1]["hypotheses"][0]["text"], "किताब");
    assert_eq!(outs[0]["truncated"], false);
    for o in outs {
        let h = o["hypotheses"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert!(h[0]["score"].as_f64().unwrap() >= h[1]["score"].as_f64().unwrap());
        assert!(h[0].get("attention").is_none());
    }
    // Defaults as the CLI: beam = the model's or 5, nbest 1, the per-source length rule.
    let r = c
        .post_json(
            "/v1/translate",
            &json!({"model":"hi-translit","inputs":["namaste"]}),
        )
        .await
        .unwrap();
    let cli = recur_serve::api::TranslateRequest {
        model: "hi-translit".into(),
        inputs: vec![],
        beam: None,
        nbest: 1,
        alpha: 0.0,
        max_len: None,
        min_len: 0,
        sentences: false,
        attention: false,
    };
    let opts = cli.options(&t).unwrap();
    assert_eq!(
        (opts.beam_size, opts.nbest, opts.max_len),
        (5, 1, recur::seq2seq::search::MaxLen::DEFAULT)
    );
    let alone = t.translate(&["namaste"], &opts).unwrap();
    let h = &r.json()["outputs"][0]["hypotheses"];
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["text"].as_str().unwrap(), alone[0][0].text);
    assert_eq!(h[0]["score"].as_f64().unwrap() as f32, alone[0][0].score);
    // Attention: tokens, source and one row per output token over the source tokens.
    let r = c
        .post_json(
            "/v1/translate",
            &json!({"model":"hi-translit","inputs":["ghar"],"attention":true,"nbest":2}),
        )
        .await
        .unwrap();
    let h = &r.json()["outputs"][0]["hypotheses"][0];
    let src: Vec<&str> = h["source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(src, ["g", "h", "a", "r"]);
    let rows = h["attention"].as_array().unwrap();
    assert_eq!(rows.len(), h["tokens"].as_array().unwrap().len());
    for row in rows {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 4);
        let sum: f64 = row.iter().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-3);
    }
    // Sentence mode, and G2P with symbols joined by spaces.
    let r = c
        .post_json("/v1/translate", &json!({"model":"hi-translit","inputs":["yeh kitaab bahut achchhi hai", ""],"sentences":true,"beam":4}))
        .await
        .unwrap();
    let v = r.json();
    assert_eq!(
        v["outputs"][0]["hypotheses"][0]["text"],
        "यह किताब बहुत अच्छी है"
    );
    assert_eq!(v["outputs"][1]["hypotheses"][0]["text"], "");
    let r = c
        .post_json(
            "/v1/translate",
            &json!({"model":"en-g2p","inputs":["hello"]}),
        )
        .await
        .unwrap();
    let hello = &r.json()["outputs"][0]["hypotheses"][0];
    assert_eq!(
        (hello["text"].as_str(), hello["origin"].as_str()),
        (Some("HH AH L OW"), Some("lexicon")),
        "from the model's lexicon (CMUdict)"
    );
    let r = c
        .post_json("/v1/translate", &json!({"model":"en-g2p","inputs":[]}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["outputs"].clone()), (200, json!([])));
}

/// Status, error code and a word the message must contain.
async fn expect_error(
    c: &mut recur_serve::client::Client,
    body: &[u8],
    status: u16,
    code: &str,
    says: &str,
) {
    let r = c.post("/v1/translate", body).await.unwrap();
    let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    assert_eq!(r.status, status, "{shown}: {}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{shown}: {v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(says), "{shown}: {msg:?} lacks {says:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_json_4xx_naming_the_field_or_limit() {
    let s = common::start_default().await;
    let mut c = s.client();
    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (b"{".to_vec(), 400, "bad_json", "JSON"),
        (b"".to_vec(), 400, "bad_json", "JSON"),
        (b"[1,2]".to_vec(), 400, "invalid_request", "object"),
        (
            b"{\"model\":\"hi-translit\",\"inputs\":[\"gh\xff\xfe\"]}".to_vec(),
            400,
            "bad_json",
            "JSON",
        ),
        (
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "bad_json",
            "recursion",
        ),
        (
            br#"{"inputs":["a"]}"#.to_vec(),
            400,
            "invalid_request",
            "`model`",
        ),
        (
            br#"{"model":7,"inputs":["a"]}"#.to_vec(),
            400,
            "invalid_request",
            "`model`",
        ),
        (
            br#"{"model":"hi-translit"}"#.to_vec(),
            400,
            "invalid_request",
            "`inputs`",
        ),
        (
            br#"{"model":"hi-translit","inputs":"ghar"}"#.to_vec(),
            400,
            "invalid_request",
            "`inputs`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a",3]}"#.to_vec(),
            400,
            "invalid_request",
            "`inputs[1]`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":"4"}"#.to_vec(),
            400,
            "invalid_request",
            "`beam`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":4.5}"#.to_vec(),
            400,
            "invalid_request",
            "`beam`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":-1}"#.to_vec(),
            400,
            "invalid_request",
            "`beam`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":0}"#.to_vec(),
            400,
            "out_of_range",
            "`beam`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":17}"#.to_vec(),
            400,
            "out_of_range",
            "max_beam",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":99999999999999999999999}"#.to_vec(),
            400,
            "invalid_request",
            "`beam`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"beam":1e400}"#.to_vec(),
            400,
            "bad_json",
            "out of range",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"nbest":100}"#.to_vec(),
            400,
            "out_of_range",
            "max_nbest",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"max_len":100000}"#.to_vec(),
            400,
            "out_of_range",
            "`max_len`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"min_len":-3}"#.to_vec(),
            400,
            "invalid_request",
            "`min_len`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"alpha":1e30}"#.to_vec(),
            400,
            "out_of_range",
            "`alpha`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"alpha":-0.5}"#.to_vec(),
            400,
            "out_of_range",
            "from 0 to 10",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"alpha":"x"}"#.to_vec(),
            400,
            "out_of_range",
            "`alpha`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"sentences":1}"#.to_vec(),
            400,
            "invalid_request",
            "`sentences`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"attention":"yes"}"#.to_vec(),
            400,
            "invalid_request",
            "`attention`",
        ),
        (
            br#"{"model":"hi-translit","inputs":["a"],"colour":"red"}"#.to_vec(),
            400,
            "unknown_field",
            "`colour`",
        ),
        (
            br#"{"model":"nope","inputs":["a"]}"#.to_vec(),
            404,
            "unknown_model",
            "hi-translit, en-g2p",
        ),
        (
            serde_json::to_vec(&json!({"model":"hi-translit","inputs": vec!["a"; 65]})).unwrap(),
            413,
            "too_many_inputs",
            "max_inputs",
        ),
        (
            serde_json::to_vec(&json!({"model":"hi-translit","inputs": ["a".repeat(257)]}))
                .unwrap(),
            413,
            "input_too_long",
            "`inputs[0]`",
        ),
        (
            serde_json::to_vec(
                &json!({"model":"en-g2p","inputs": vec!["a".repeat(200); 40], "beam": 16}),
            )
            .unwrap(),
            413,
            "request_too_costly",
            "max_cost",
        ),
        (
            serde_json::to_vec(
                &json!({"model":"hi-translit","inputs": ["a"], "pad": "x".repeat(70_000)}),
            )
            .unwrap(),
            413,
            "body_too_large",
            "max_body_bytes",
        ),
    ];
    for (body, status, code, says) in &cases {
        expect_error(&mut c, body, *status, code, says).await;
    }
    // Unknown paths and wrong methods are JSON errors too.
    let r = c.get("/v2/nothing").await.unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let r = c.get("/v1/translate").await.unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );
    // The server is still well.
    let r = c.get("/health").await.unwrap();
    assert_eq!(r.status, 200);
    let m = c.get("/metrics").await.unwrap().text();
    assert!(!m.contains("status=\"5"), "a 5xx was counted:\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_503_with_retry_after() {
    let limits = Limits {
        queue: 1,
        timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let s = common::start(
        limits,
        Batching {
            window: Duration::ZERO,
            budget: 0,
            workers: 1,
        },
    )
    .await;
    let heavy = json!({"model":"en-g2p","inputs": vec![NOT_IN_CMUDICT; 16], "beam": 8});
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let mut c = s.client();
        let body = heavy.clone();
        tasks.push(tokio::spawn(async move {
            c.post_json("/v1/translate", &body).await.unwrap()
        }));
    }
    let mut full = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => {}
            503 => {
                full += 1;
                assert_eq!(r.header("retry-after"), Some("1"));
                assert_eq!(r.json()["error"]["code"], "queue_full");
                assert!(r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("queue limit"));
            }
            other => panic!("status {other}: {}", r.text()),
        }
    }
    assert!(
        full > 0,
        "12 heavy requests at once never filled a queue of 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_answers_504() {
    let limits = Limits {
        timeout: Duration::from_millis(5),
        ..Limits::default()
    };
    let s = common::start(limits, Batching::default()).await;
    let mut c = s.client();
    let heavy = json!({"model":"en-g2p","inputs": vec![NOT_IN_CMUDICT; 16], "beam": 8});
    let r = c.post_json("/v1/translate", &heavy).await.unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "deadline_exceeded");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("timeout"));
}
