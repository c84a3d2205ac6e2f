//! Under concurrent load, every answer is byte-identical to decoding its request alone (as
//! `recur translate` does), and requests are really batched together.

mod common;

use std::time::Duration;

use recur::transducer::Transducer;
use recur_serve::api::TranslateRequest;
use recur_serve::Batching;
use serde_json::json;

fn request(beam: Option<usize>, nbest: usize, sentences: bool) -> TranslateRequest {
    TranslateRequest {
        model: "hi-translit".into(),
        inputs: vec![],
        beam,
        nbest,
        alpha: 0.0,
        max_len: None,
        min_len: 0,
        sentences,
        attention: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_equal_decoding_alone() {
    let batching = Batching {
        window: Duration::from_millis(5),
        budget: 8192,
        workers: 2,
    };
    let s = common::start(recur_serve::Limits::default(), batching).await;
    let words = common::hindi_words(240);
    let t = Transducer::load("hi-translit").unwrap();
    // Three option sets, so batches mix groups.
    let variants = [(None, 1), (Some(4), 2), (Some(1), 1)];
    let clients = 24;
    let mut tasks = Vec::new();
    for k in 0..clients {
        let mut c = s.client();
        let mine: Vec<String> = words.iter().skip(k).step_by(clients).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for (i, w) in mine.iter().enumerate() {
                let (beam, nbest) = variants[(i + k) % variants.len()];
                let body = json!({"model":"hi-translit","inputs":[w],"beam":beam,"nbest":nbest});
                let r = c.post_json("/v1/translate", &body).await.unwrap();
                assert_eq!(r.status, 200, "{}", r.text());
                got.push((w.clone(), beam, nbest, r.json()));
            }
            // One sentence request per client too.
            let line = mine.iter().take(5).cloned().collect::<Vec<_>>().join(" ");
            let body = json!({"model":"hi-translit","inputs":[line],"sentences":true});
            let r = c.post_json("/v1/translate", &body).await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            (got, line, r.json())
        }));
    }
    let mut checked = 0;
    for task in tasks {
        let (got, line, sent) = task.await.unwrap();
        for (w, beam, nbest, v) in got {
            let opts = request(beam, nbest, false).options(&t).unwrap();
            let alone = t.translate(&[w.as_str()], &opts).unwrap();
            let hyps = v["outputs"][0]["hypotheses"].as_array().unwrap().clone();
            assert_eq!(hyps.len(), nbest.min(alone[0].len()));
            for (h, o) in hyps.iter().zip(&alone[0]) {
                assert_eq!(h["text"].as_str().unwrap(), o.text, "{w}");
                assert_eq!(
                    (h["score"].as_f64().unwrap() as f32).to_bits(),
                    o.score.to_bits(),
                    "{w}"
                );
                assert_eq!(
                    (h["log_prob"].as_f64().unwrap() as f32).to_bits(),
                    o.log_prob.to_bits(),
                    "{w}"
                );
            }
            checked += 1;
        }
        let opts = request(None, 1, true).options(&t).unwrap();
        let alone = t.translate_sentences(&[line.as_str()], &opts).unwrap();
        assert_eq!(
            sent["outputs"][0]["hypotheses"][0]["text"]
                .as_str()
                .unwrap(),
            alone[0]
        );
    }
    assert_eq!(checked, words.len());
    // Some batch held more than one request.
    let m = s.client().get("/metrics").await.unwrap().text();
    let ones = metric(
        &m,
        "recur_batch_requests_bucket{model=\"hi-translit\",le=\"1\"}",
    );
    let all = metric(&m, "recur_batch_requests_count{model=\"hi-translit\"}");
    assert!(all > 0.0 && ones < all, "no batch held two requests:\n{m}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}
