//! The HTTP contract: routes, request checks, JSON answers and JSON errors.
//!
//! Every error is `{"error":{"code":..., "message":...}}` with a message naming the field or
//! the limit: 400 bad JSON or value, 404 unknown model (listing the known ones) or path, 405
//! wrong method, 413 body, inputs, input or request cost too large, 503 queue full (with `Retry-After`), 504
//! deadline passed, 500 decoding failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{DecodeRequest, Origin, Output, Transducer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tower::limit::ConcurrencyLimitLayer;

use crate::batcher::{Answer, Job, Refused};
use crate::{App, Limits};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const OPENAPI_JSON: &str = include_str!("../assets/openapi.json");

/// The OpenAPI document of this server: `assets/openapi.json` with the served model names
/// and the limits in force filled in.
pub fn openapi_document(app: &App) -> Value {
    let mut doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap_or(Value::Null);
    let l = &app.limits;
    let names: Vec<&str> = app.models.iter().map(|m| m.name.as_str()).collect();
    if let Some(p) = doc.pointer_mut("/components/schemas/TranslateRequest/properties") {
        p["model"]["enum"] = json!(names);
        p["inputs"]["maxItems"] = json!(l.max_inputs);
        p["inputs"]["items"]["maxLength"] = json!(l.max_input_chars);
        p["beam"]["maximum"] = json!(l.max_beam);
        p["nbest"]["maximum"] = json!(l.max_nbest);
        p["max_len"]["maximum"] = json!(l.max_len);
        p["min_len"]["maximum"] = json!(l.max_len);
    }
    doc
}

/// The router of the endpoint contract over `app`.
pub fn router(app: Arc<App>) -> Router {
    let limits = app.limits.clone();
    let doc: Arc<str> = Arc::from(openapi_document(&app).to_string());
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/translate", post(translate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .layer(ConcurrencyLimitLayer::new(limits.max_concurrent.max(1)))
        .with_state(app)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// What is wrong, naming the field or the limit.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// The model a translate answer was for, carried to the metrics layer.
#[derive(Clone)]
struct ModelLabel(String);

async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let resp = next.run(req).await;
    let model = resp
        .extensions()
        .get::<ModelLabel>()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    app.metrics
        .observe_request(&path, &model, resp.status().as_u16(), start.elapsed());
    resp
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn health() -> Json<Value> {
    // The models are loaded before the listener is bound: answering means ready.
    Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such path; the endpoints are GET /, /health, /v1/models, /metrics, /openapi.json and POST /v1/translate",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "wrong method for this path: /v1/translate takes POST, the others GET",
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let queues: Vec<(String, usize)> = app
        .models
        .iter()
        .map(|m| (m.name.clone(), m.queue_depth()))
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&queues),
    )
        .into_response()
}

async fn models(State(app): State<Arc<App>>) -> Json<Value> {
    let list: Vec<Value> = app
        .models
        .iter()
        .map(|m| {
            let d = &m.transducer.config.data;
            let dc = &m.transducer.config.decode;
            json!({
                "name": m.name,
                "summary": m.summary,
                "source_tokens": d.src_tokens,
                "target_tokens": d.tgt_tokens,
                "default_beam": dc.beam.unwrap_or(5),
                "default_max_len": dc.max_len,
            })
        })
        .collect();
    Json(json!({ "models": list }))
}

/// A checked `/v1/translate` request.
#[derive(Debug, Clone)]
pub struct TranslateRequest {
    /// Model name.
    pub model: String,
    /// Inputs: words, or lines with `sentences`.
    pub inputs: Vec<String>,
    /// Beam (default: the model's, else 5).
    pub beam: Option<usize>,
    /// Hypotheses per input (default 1; lowered to the beam when above it).
    pub nbest: usize,
    /// GNMT length-penalty alpha (default 0).
    pub alpha: f32,
    /// Maximum output tokens (default: the model's, else the per-source rule).
    pub max_len: Option<usize>,
    /// Minimum output tokens (default 0).
    pub min_len: usize,
    /// Sentence mode (default false): one line per input, so `attention` does not apply and
    /// only the best hypothesis is returned (as `recur translate --sentences`).
    pub sentences: bool,
    /// Return tokens and attention per hypothesis (default false).
    pub attention: bool,
}

impl TranslateRequest {
    /// The decoding options, resolved and checked as `recur translate` does
    /// ([`DecodeRequest::resolve`]), but `nbest` is lowered to the beam (documented in the
    /// API: a request says how many hypotheses at most it wants).
    pub fn options(&self, model: &Transducer) -> Result<DecodeOptions, ApiError> {
        let stored = &model.config.decode;
        let beam = self.beam.or(stored.beam).unwrap_or(5).max(1);
        let request = DecodeRequest {
            beam: Some(beam),
            nbest: self.nbest.clamp(1, beam),
            alpha: self.alpha,
            max_len: self.max_len,
            min_len: self.min_len,
            attention: self.attention && !self.sentences,
            // The model's word-frequency weight (`[decode] word_freq_weight`), as the CLI.
            word_freq_weight: None,
        };
        request.resolve(stored).map_err(|e| match e {
            recur::Error::InvalidArgument {
                arg, expected, got, ..
            } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "out_of_range",
                format!("field `{arg}`: expected {expected}, got {got}"),
            ),
            e => ApiError::bad(e.to_string()),
        })
    }
}

const FIELDS: &str = "model, inputs, beam, nbest, alpha, max_len, min_len, sentences, attention";

fn int_field(v: &Value, name: &str, min: u64, max: u64, limit: &str) -> Result<usize, ApiError> {
    let n = v.as_u64().filter(|_| v.is_u64()).ok_or_else(|| {
        ApiError::bad(format!(
            "field `{name}`: expected an integer from {min} to {max}, got {}",
            short(v)
        ))
    })?;
    if n < min || n > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            format!("field `{name}`: {n} is outside {min}..={max} (limit {limit})"),
        ));
    }
    Ok(n as usize)
}

fn bool_field(v: &Value, name: &str) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| {
        ApiError::bad(format!(
            "field `{name}`: expected true or false, got {}",
            short(v)
        ))
    })
}

/// A value shortened for an error message.
fn short(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            if s.len() > 24 {
                format!("a number ({}…)", &s[..24])
            } else {
                s
            }
        }
        _ => kind.to_string(),
    }
}

/// Parses and checks a request body against `limits`.
pub fn parse_request(body: &[u8], limits: &Limits) -> Result<TranslateRequest, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = v else {
        return Err(ApiError::bad(format!(
            "the body must be a JSON object with the fields {FIELDS}, got {}",
            short(&v)
        )));
    };
    check_object(&obj, limits)
}

fn check_object(obj: &Map<String, Value>, limits: &Limits) -> Result<TranslateRequest, ApiError> {
    for k in obj.keys() {
        if !FIELDS.split(", ").any(|f| f == k) {
            let k: String = k.chars().take(40).collect();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_field",
                format!("unknown field `{k}`; the fields are {FIELDS}"),
            ));
        }
    }
    let model = match obj.get("model") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(ApiError::bad(format!(
                "field `model`: expected a string, got {}",
                short(v)
            )))
        }
        None => {
            return Err(ApiError::bad(
                "field `model` is missing (a model name, see GET /v1/models)",
            ))
        }
    };
    let inputs = match obj.get("inputs") {
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(ApiError::bad(format!(
                "field `inputs`: expected an array of strings, got {}",
                short(v)
            )))
        }
        None => {
            return Err(ApiError::bad(
                "field `inputs` is missing (an array of strings)",
            ))
        }
    };
    if inputs.len() > limits.max_inputs {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_inputs",
            format!(
                "field `inputs`: {} inputs, the limit is {} per request (max_inputs)",
                inputs.len(),
                limits.max_inputs
            ),
        ));
    }
    let mut texts = Vec::with_capacity(inputs.len());
    for (i, x) in inputs.iter().enumerate() {
        let Value::String(s) = x else {
            return Err(ApiError::bad(format!(
                "field `inputs[{i}]`: expected a string, got {}",
                short(x)
            )));
        };
        let n = s.chars().count();
        if n > limits.max_input_chars {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "input_too_long",
                format!(
                    "field `inputs[{i}]`: {n} characters, the limit is {} (max_input_chars)",
                    limits.max_input_chars
                ),
            ));
        }
        texts.push(s.clone());
    }
    let get_int =
        |name: &str, min: u64, max: u64, limit: &str| -> Result<Option<usize>, ApiError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => int_field(v, name, min, max, limit).map(Some),
            }
        };
    let get_bool = |name: &str| -> Result<bool, ApiError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(v) => bool_field(v, name),
        }
    };
    let beam = get_int("beam", 1, limits.max_beam as u64, "max_beam")?;
    let nbest = get_int("nbest", 1, limits.max_nbest as u64, "max_nbest")?.unwrap_or(1);
    let max_len = get_int("max_len", 1, limits.max_len as u64, "max_len")?;
    let min_len = get_int("min_len", 0, limits.max_len as u64, "max_len")?.unwrap_or(0);
    let alpha = match obj.get("alpha") {
        None | Some(Value::Null) => 0.0,
        Some(v) => match v.as_f64() {
            Some(a) if (0.0..=10.0).contains(&a) => a as f32,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "out_of_range",
                    format!(
                        "field `alpha`: expected a number from 0 to 10, got {}",
                        short(v)
                    ),
                ))
            }
        },
    };
    let sentences = get_bool("sentences")?;
    let attention = get_bool("attention")?;
    Ok(TranslateRequest {
        model,
        inputs: texts,
        beam,
        nbest,
        alpha,
        max_len,
        min_len,
        sentences,
        attention,
    })
}

/// One hypothesis in an answer.
#[derive(Serialize)]
struct Hypothesis {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_prob: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attention: Option<Vec<Vec<f32>>>,
    /// `"lexicon"` for an entry of the model's lexicon (absent: decoded by the model).
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
}

/// A `/v1/translate` answer.
#[derive(Serialize)]
struct TranslateResponse {
    model: String,
    outputs: Vec<Item>,
}

#[derive(Serialize)]
struct Item {
    input: String,
    hypotheses: Vec<Hypothesis>,
    truncated: bool,
}

async fn translate(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    match translate_inner(&app, body).await {
        Ok((model, v)) => {
            let mut r = Json(v).into_response();
            r.extensions_mut().insert(ModelLabel(model));
            r
        }
        Err((model, e)) => {
            let mut r = e.into_response();
            if let Some(m) = model {
                r.extensions_mut().insert(ModelLabel(m));
            }
            r
        }
    }
}

type Failure = (Option<String>, ApiError);

async fn translate_inner(
    app: &App,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, TranslateResponse), Failure> {
    let limits = &app.limits;
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            (
                None,
                ApiError::new(
                    status,
                    "body_too_large",
                    format!(
                        "the body is larger than {} bytes (max_body_bytes)",
                        limits.max_body_bytes
                    ),
                ),
            )
        } else {
            (
                None,
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("reading the body: {e}"),
                ),
            )
        }
    })?;
    let req = parse_request(&body, limits).map_err(|e| (None, e))?;
    let Some(model) = app.model(&req.model) else {
        let known: Vec<&str> = app.models.iter().map(|m| m.name.as_str()).collect();
        let name: String = req.model.chars().take(64).collect();
        return Err((
            None,
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_model",
                format!(
                    "field `model`: no model {name:?}; the known models are {}",
                    known.join(", ")
                ),
            ),
        ));
    };
    let label = Some(model.name.clone());
    let t = &model.transducer;
    let opts = req.options(t).map_err(|e| (label.clone(), e))?;
    let cost = crate::batcher::cost(&req.inputs, opts.beam_size);
    if cost > limits.max_cost {
        return Err((
            label,
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_costly",
                format!(
                    "fields `inputs` and `beam`: the request costs {cost} (Σ over inputs of (characters + 1) × beam), the limit is {} (max_cost); split it or lower the beam",
                    limits.max_cost
                ),
            ),
        ));
    }
    let now = Instant::now();
    let deadline = now + limits.timeout;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        inputs: req.inputs.clone(),
        opts,
        sentences: req.sentences,
        deadline,
        queued: now,
        reply: tx,
    };
    if req.inputs.is_empty() {
        let empty = TranslateResponse {
            model: model.name.clone(),
            outputs: Vec::new(),
        };
        return Ok((model.name.clone(), empty));
    }
    model.submit(job).map_err(|r| {
        let e = match r {
            Refused::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                format!(
                    "the queue of model {:?} is full ({} requests, the queue limit); retry after 1 s",
                    model.name, limits.queue
                ),
            ),
            Refused::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopping",
                "the server is stopping",
            ),
        };
        (label.clone(), e)
    })?;
    let timeout = deadline.saturating_duration_since(Instant::now());
    let answer = match tokio::time::timeout(timeout.max(Duration::from_millis(1)), rx).await {
        Err(_) => Err(deadline_error(limits)),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the model's batcher has stopped",
        )),
        Ok(Ok(Err(msg))) if msg == "deadline" => Err(deadline_error(limits)),
        Ok(Ok(Err(msg))) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "decode_failed",
            msg,
        )),
        Ok(Ok(Ok(a))) => Ok(a),
    }
    .map_err(|e| (label.clone(), e))?;
    let outputs: Vec<Item> = match answer {
        Answer::Sentences(lines) => req
            .inputs
            .iter()
            .zip(lines)
            .map(|(input, text)| Item {
                input: input.clone(),
                hypotheses: vec![Hypothesis {
                    text,
                    score: None,
                    log_prob: None,
                    truncated: None,
                    tokens: None,
                    source: None,
                    attention: None,
                    origin: None,
                }],
                truncated: false,
            })
            .collect(),
        Answer::Words(all) => req
            .inputs
            .iter()
            .zip(all)
            .map(|(input, hyps)| item(t, input, hyps, req.nbest, req.attention))
            .collect(),
    };
    let answer = TranslateResponse {
        model: model.name.clone(),
        outputs,
    };
    Ok((model.name.clone(), answer))
}

fn deadline_error(limits: &Limits) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
        format!(
            "the request was not decoded within {} ms (the request timeout)",
            limits.timeout.as_millis()
        ),
    )
}

fn item(t: &Transducer, input: &str, hyps: Vec<Output>, nbest: usize, attention: bool) -> Item {
    let truncated = hyps.first().is_some_and(|h| h.truncated);
    let source: Vec<String> = if attention {
        t.src_vocab
            .decode(&t.encode_source(input))
            .into_iter()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let hypotheses = hyps
        .into_iter()
        .take(nbest.max(1))
        .map(|h| {
            let (tokens, src, att) = if attention {
                let mut tokens: Vec<String> = t
                    .config
                    .data
                    .tgt_tokens
                    .tokenize(&h.text)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                // One label per attention row (a row past the text is the end of sequence).
                while tokens.len() < h.attention.len() {
                    tokens.push("</s>".to_string());
                }
                if !h.attention.is_empty() {
                    tokens.truncate(h.attention.len());
                }
                (Some(tokens), Some(source.clone()), Some(h.attention))
            } else {
                (None, None, None)
            };
            let origin = (!h.origin.is_model()).then_some(h.origin);
            Hypothesis {
                text: h.text,
                score: Some(h.score),
                log_prob: Some(h.log_prob),
                truncated: Some(h.truncated),
                tokens,
                source: src,
                attention: att,
                origin,
            }
        })
        .collect();
    Item {
        input: input.to_string(),
        hypotheses,
        truncated,
    }
}
