//! A small GraphQL-over-HTTP client on one pooled `reqwest::Client` (keep-alive).

use anyhow::Context as _;
use serde_json::{Value, json};
use std::time::Duration;

/// The answer to one request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// `data` and no errors.
    Data(Value),
    /// A GraphQL error: the first error's `extensions.code` and message.
    Refused { code: String, message: String },
    /// No GraphQL answer: transport failure, a status other than 200, or a body that is not a
    /// GraphQL response.
    Failed(String),
}

impl Reply {
    /// A one-line description for error samples.
    pub(crate) fn describe(&self) -> String {
        match self {
            Reply::Data(_) => "data".into(),
            Reply::Refused { code, message } => format!("{code}: {message}"),
            Reply::Failed(why) => why.clone(),
        }
    }
}

/// Sends GraphQL requests to one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Gql {
    http: reqwest::Client,
    endpoint: String,
}

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Gql {
    /// A client for `base_url` (`http://host:port`), pooling up to `pool` idle connections.
    pub(crate) fn new(base_url: &str, pool: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let endpoint = format!("{}/graphql", base_url.trim_end_matches('/'));
        Ok(Self { http, endpoint })
    }

    /// Sends one request with `key` as the bearer token.
    pub(crate) async fn send(&self, key: &str, query: &str, variables: Value) -> Reply {
        let sent = self
            .http
            .post(&self.endpoint)
            .bearer_auth(key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Reply::Failed(format!("transport: {}", chain(&e))),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Reply::Failed(format!("reading the body: {}", chain(&e))),
        };
        if status != reqwest::StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            return Reply::Failed(format!("HTTP {status}: {text}"));
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Reply::Failed(format!("not JSON ({e})")),
        };
        if let Some(first) = v
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            let code = first["extensions"]["code"]
                .as_str()
                .unwrap_or("NO_CODE")
                .to_string();
            let message = first["message"].as_str().unwrap_or("").to_string();
            return Reply::Refused { code, message };
        }
        match v.get("data") {
            Some(data) if !data.is_null() => Reply::Data(data.clone()),
            _ => Reply::Failed(format!("no data and no errors: {v}")),
        }
    }

    /// Like [`send`](Self::send) for setup steps: anything but data is an error naming `what`.
    pub(crate) async fn must(
        &self,
        key: &str,
        what: &str,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        match self.send(key, query, variables).await {
            Reply::Data(d) => Ok(d),
            other => anyhow::bail!("{what} failed at {}: {}", self.endpoint, other.describe()),
        }
    }
}

/// An error with its sources, e.g. "error sending request: connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
