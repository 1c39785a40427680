//! The chat client: one OpenAI-compatible endpoint, reached through async-openai with a
//! one-attempt transport of our own, so that this module decides — and records — every retry.
//!
//! - A request that passes `timeout` is abandoned (the future is dropped, the connection closed).
//! - Timeouts, connection errors, 408, 429 and 5xx are retried with exponential backoff and
//!   jitter, or after the server's `Retry-After`. Once the endpoint has failed for longer than
//!   `unreachable` without a success in between, the call ends as [`CallError::Unreachable`].
//! - 401, 403 and 404 mean the configuration is wrong (key, model, URL): [`CallError::Fatal`].
//!   Other 4xx reject this request only: [`CallError::Rejected`].
//! - Structured output falls back `json_schema` → `json_object` with the schema → plain text
//!   when the server refuses a format, and the client remembers what worked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs, ResponseFormat, ResponseFormatJsonSchema,
};
use autoarch_archive::{AnswerMode, Tokens};
use rand::Rng;
use serde_json::Value;

/// The modes a client tries, best first: a refused one falls back to the next.
pub const MODE_CHAIN: [AnswerMode; 3] = AnswerMode::ALL;

/// Where the client stands with its endpoint.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub base_url: String,
    /// The API key (from the environment); never stored or logged.
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub unreachable: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The first mode to try; later ones are fallbacks.
    pub first_mode: AnswerMode,
    /// Whether a refused format may fall back to the next one.
    pub fallback: bool,
}

/// One chat request.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    /// Worked examples, each a user turn and the answer to it, sent between the system
    /// message and the question: small models follow an example far better than instructions.
    pub examples: Vec<(String, String)>,
    pub user: String,
    pub temperature: f64,
    pub max_tokens: u32,
    /// The sampling seed (servers that support it give the same answer to the same request).
    pub seed: u64,
    /// The answer's JSON schema (for the structured modes).
    pub schema: Value,
    pub schema_name: &'static str,
}

/// An answer, with what it took to get it.
#[derive(Clone, Debug)]
pub struct ChatAnswer {
    pub content: String,
    pub finish_reason: Option<String>,
    pub tokens: Tokens,
    /// True when the server reported no usage and the counts were estimated (4 chars a token).
    pub estimated: bool,
    pub mode: AnswerMode,
    pub attempts: Vec<String>,
    pub seconds: f64,
}

/// Why a call gave no answer. Each carries the failed attempts, in order.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CallError {
    /// The endpoint failed for longer than the configured time.
    #[error("the LLM endpoint has been unreachable for {seconds:.0} s (last: {last})")]
    Unreachable {
        seconds: f64,
        last: String,
        attempts: Vec<String>,
    },
    /// The configuration cannot work (wrong key, model or URL).
    #[error("{0}")]
    Fatal(String, Vec<String>),
    /// The server refused this request (e.g. the prompt is too long); others may pass.
    #[error("{0}")]
    Rejected(String, Vec<String>),
}

impl CallError {
    pub fn attempts(&self) -> &[String] {
        match self {
            CallError::Unreachable { attempts, .. } => attempts,
            CallError::Fatal(_, a) | CallError::Rejected(_, a) => a,
        }
    }
}

/// A non-success HTTP answer, as the transport hands it up (async-openai's own error reading
/// drops the headers, and with them `Retry-After`).
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {body}")]
struct HttpFailure {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn excerpt(text: &str, n: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

/// Does this refusal concern the requested output format?
fn refuses_format(status: u16, body: &str) -> bool {
    let b = body.to_lowercase();
    let about_format = [
        "response_format",
        "json_schema",
        "json_object",
        "schema",
        "grammar",
    ]
    .iter()
    .any(|k| b.contains(k));
    // A 400 for another reason (a prompt over the context window) must not cost every later
    // call its structured output.
    match status {
        415 | 501 => true,
        400 | 422 | 500..=599 => about_format,
        _ => false,
    }
}

pub struct LlmClient {
    client: async_openai::Client<OpenAIConfig>,
    settings: ClientSettings,
    /// Index into [`MODE_CHAIN`] of the mode that works (or is being tried).
    mode: AtomicUsize,
    /// When the current run of failures began.
    down_since: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.settings.base_url)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

enum Failure {
    Retry(String, Option<Duration>),
    Downgrade(String),
    Fatal(String),
    Rejected(String),
}

impl LlmClient {
    pub fn new(settings: ClientSettings) -> anyhow::Result<LlmClient> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .build()?;
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if response.status().is_success() {
                    return Ok(response);
                }
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                let body = response.text().await.unwrap_or_default();
                Err(OpenAIError::Boxed(Box::new(HttpFailure {
                    status,
                    retry_after,
                    body,
                })))
            }
        });
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.clone().unwrap_or_default());
        let client = async_openai::Client::with_config(config).with_http_service(transport);
        let first = MODE_CHAIN
            .iter()
            .position(|m| *m == settings.first_mode)
            .unwrap_or(0);
        Ok(LlmClient {
            client,
            settings,
            mode: AtomicUsize::new(first),
            down_since: Mutex::new(None),
        })
    }

    /// The mode the next call asks in.
    pub fn mode(&self) -> AnswerMode {
        MODE_CHAIN[self.mode.load(Ordering::SeqCst).min(2)]
    }

    fn body(&self, r: &ChatRequest, mode: AnswerMode) -> anyhow::Result<Value> {
        let mut messages: Vec<ChatCompletionRequestMessage> =
            vec![ChatCompletionRequestSystemMessage::from(r.system.as_str()).into()];
        for (question, answer) in &r.examples {
            messages.push(ChatCompletionRequestUserMessage::from(question.as_str()).into());
            messages.push(ChatCompletionRequestAssistantMessage::from(answer.as_str()).into());
        }
        messages.push(ChatCompletionRequestUserMessage::from(r.user.as_str()).into());
        let mut args = CreateChatCompletionRequestArgs::default();
        args.model(&r.model)
            .messages(messages)
            .temperature(r.temperature as f32)
            .max_tokens(r.max_tokens)
            .seed((r.seed & (i64::MAX as u64)) as i64);
        match mode {
            AnswerMode::JsonSchema => {
                args.response_format(ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        description: None,
                        name: r.schema_name.to_string(),
                        schema: r.schema.clone(),
                        strict: None,
                    },
                });
            }
            AnswerMode::JsonObject => {
                args.response_format(ResponseFormat::JsonObject);
            }
            AnswerMode::Text => {}
        }
        let mut body = serde_json::to_value(args.build()?)?;
        if mode == AnswerMode::JsonObject {
            // llama.cpp's server (and others) take the schema beside `json_object`.
            body["response_format"]["schema"] = r.schema.clone();
        }
        Ok(body)
    }

    fn classify(&self, e: OpenAIError, mode: AnswerMode) -> Failure {
        if let OpenAIError::Boxed(b) = &e {
            if let Some(h) = b.downcast_ref::<HttpFailure>() {
                let what = format!("HTTP {}: {}", h.status, excerpt(&h.body, 200));
                if mode != AnswerMode::Text
                    && self.settings.fallback
                    && refuses_format(h.status, &h.body)
                {
                    return Failure::Downgrade(what);
                }
                return match h.status {
                    401 | 403 => Failure::Fatal(format!(
                        "{what} — the endpoint refused the API key (is the variable named by `llm.api_key_env` set?)"
                    )),
                    404 => Failure::Fatal(format!(
                        "{what} — check `llm.base_url` (it usually ends in /v1) and the model name"
                    )),
                    408 | 409 | 425 | 429 | 500..=599 => Failure::Retry(what, h.retry_after),
                    _ => Failure::Rejected(what),
                };
            }
            return Failure::Retry(format!("transport error: {b}"), None);
        }
        match e {
            OpenAIError::Reqwest(r) => {
                let what = if r.is_timeout() {
                    format!(
                        "timed out after {:.1} s",
                        self.settings.timeout.as_secs_f64()
                    )
                } else if r.is_connect() {
                    format!("cannot connect: {}", excerpt(&error_chain(&r), 200))
                } else {
                    format!("request failed: {}", excerpt(&error_chain(&r), 200))
                };
                Failure::Retry(what, None)
            }
            OpenAIError::JSONDeserialize(err, body) => Failure::Rejected(format!(
                "the server's answer is not JSON ({err}): {}",
                excerpt(&body, 200)
            )),
            other => Failure::Rejected(excerpt(&other.to_string(), 300)),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let base = self.settings.retry_base.as_secs_f64();
        let cap = self.settings.retry_max.as_secs_f64();
        let exp = (base * 2f64.powi(retry.min(30) as i32)).min(cap);
        // "Equal jitter": half fixed, half random, so waits grow yet never synchronise.
        let jittered = exp / 2.0 + rand::rng().random::<f64>() * exp / 2.0;
        Duration::from_secs_f64(jittered)
    }

    /// Asks once, retrying and falling back as the module doc says.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatAnswer, CallError> {
        let started = Instant::now();
        let mut attempts = Vec::new();
        let mut retries = 0u32;
        loop {
            let mode = self.mode();
            let body = self.body(request, mode).map_err(|e| {
                CallError::Rejected(format!("building the request: {e}"), attempts.clone())
            })?;
            let chat = self.client.chat();
            let call = chat.create_byot::<Value, Value>(body);
            let outcome = match tokio::time::timeout(self.settings.timeout, call).await {
                Ok(r) => r.map_err(|e| self.classify(e, mode)),
                Err(_) => Err(Failure::Retry(
                    format!(
                        "timed out after {:.1} s",
                        self.settings.timeout.as_secs_f64()
                    ),
                    None,
                )),
            };
            let failure = match outcome {
                Ok(v) => {
                    *self.down_since.lock().expect("no panic holding it") = None;
                    return read_answer(v, request, mode, attempts, started)
                        .map_err(|(why, attempts)| CallError::Rejected(why, attempts));
                }
                Err(f) => f,
            };
            match failure {
                Failure::Downgrade(what) => {
                    let at = MODE_CHAIN.iter().position(|m| *m == mode).unwrap_or(0);
                    let next = MODE_CHAIN[(at + 1).min(2)];
                    // Only move the shared mode on if no other call did already.
                    let _ = self.mode.compare_exchange(
                        at,
                        (at + 1).min(2),
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    tracing::warn!(endpoint = %self.settings.base_url, "{} refused ({what}); asking in {} from now on", mode.as_str(), next.as_str());
                    attempts.push(format!(
                        "{what} — the server refuses {}; falling back to {}",
                        mode.as_str(),
                        next.as_str()
                    ));
                }
                Failure::Fatal(what) => {
                    attempts.push(what.clone());
                    return Err(CallError::Fatal(what, attempts));
                }
                Failure::Rejected(what) => {
                    attempts.push(what.clone());
                    return Err(CallError::Rejected(what, attempts));
                }
                Failure::Retry(what, after) => {
                    let since = *self
                        .down_since
                        .lock()
                        .expect("no panic holding it")
                        .get_or_insert_with(Instant::now);
                    let down = since.elapsed();
                    if down >= self.settings.unreachable {
                        attempts.push(what.clone());
                        return Err(CallError::Unreachable {
                            seconds: down.as_secs_f64(),
                            last: what,
                            attempts,
                        });
                    }
                    let (wait, why) = match after {
                        Some(a) => (a.min(self.settings.retry_max), "Retry-After"),
                        None => (self.backoff(retries), "backoff"),
                    };
                    // Never sleep past the point where the endpoint counts as unreachable.
                    let wait = wait.min(
                        self.settings.unreachable.saturating_sub(down) + Duration::from_millis(10),
                    );
                    retries += 1;
                    tracing::info!(endpoint = %self.settings.base_url, "LLM call failed ({what}); retrying in {:.1} s", wait.as_secs_f64());
                    attempts.push(format!(
                        "{what}; waited {:.1} s ({why})",
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

type Rejection = (String, Vec<String>);

/// Reads a chat completion's text, finish reason and usage.
fn read_answer(
    v: Value,
    request: &ChatRequest,
    mode: AnswerMode,
    mut attempts: Vec<String>,
    started: Instant,
) -> Result<ChatAnswer, Rejection> {
    let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
        let why = format!(
            "the server's answer has no `choices`: {}",
            excerpt(&v.to_string(), 200)
        );
        attempts.push(why.clone());
        return Err((why, attempts));
    };
    let content = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let usage = v.get("usage");
    let count = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
    let (tokens, estimated) = match (count("prompt_tokens"), count("completion_tokens")) {
        (Some(p), Some(c)) => (
            Tokens {
                prompt: p,
                completion: c,
            },
            false,
        ),
        _ => (
            Tokens {
                prompt: ((request.system.len() + request.user.len()) as u64).div_ceil(4),
                completion: (content.len() as u64).div_ceil(4),
            },
            true,
        ),
    };
    Ok(ChatAnswer {
        content,
        finish_reason,
        tokens,
        estimated,
        mode,
        attempts,
        seconds: started.elapsed().as_secs_f64(),
    })
}
