//! `/metrics` in the Prometheus text format. A handful of counters kept in memory; no framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

#[derive(Debug, Default)]
struct Requests {
    /// (method, route, status) → (count, total seconds)
    by_route: BTreeMap<(String, String, u16), (u64, f64)>,
}

/// The gateway's counters. `f64` here measures seconds for Prometheus; money never passes here.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    /// Adds one to a named counter with one `reason` label, e.g.
    /// `("forfall_webhooks_rejected_total", "bad_signature")`.
    pub fn count(&self, name: &'static str, label: &str) {
        self.count_labelled(name, &[("reason", label)]);
    }

    /// Adds one to a named counter with several labels, e.g.
    /// `("forfall_jobs_total", [("kind", "pipeline"), ("outcome", "dead")])`.
    pub fn count_labelled(&self, name: &'static str, labels: &[(&str, &str)]) {
        let rendered = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
            .collect::<Vec<_>>()
            .join(",");
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name, rendered)).or_default() += 1;
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let entry = requests
            .by_route
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP forfall_build_info The running version.\n");
        out.push_str("# TYPE forfall_build_info gauge\n");
        let _ = writeln!(
            out,
            "forfall_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP forfall_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE forfall_http_requests_total counter\n");
        for ((method, route, status), (count, _)) in &requests.by_route {
            let _ = writeln!(
                out,
                "forfall_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP forfall_http_request_duration_seconds_sum Time spent answering, by route.\n",
        );
        out.push_str("# TYPE forfall_http_request_duration_seconds_sum counter\n");
        for ((method, route, status), (_, seconds)) in &requests.by_route {
            let _ = writeln!(
                out,
                "forfall_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {seconds:.6}",
                escape(route)
            );
        }
        drop(requests);
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), count) in counters.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{labels}}} {count}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every request by method, matched route (never the raw path, which may hold ids) and
/// status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_counters_render_in_the_prometheus_text_format() {
        let metrics = Metrics::default();
        metrics.record("GET", "/health/live", 200, 0.001);
        metrics.record("GET", "/health/live", 200, 0.002);
        metrics.count("forfall_webhooks_rejected_total", "bad_signature");
        let text = metrics.render();
        assert!(text.contains(
            "forfall_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 2"
        ));
        assert!(text.contains("# TYPE forfall_webhooks_rejected_total counter"));
        assert!(text.contains("forfall_webhooks_rejected_total{reason=\"bad_signature\"} 1"));
    }
}
