//! Prometheus metrics in the text exposition format, written by hand.
//!
//! Labels are the route template (`/v1/candidates/{candidate_id}/extract`, never the path with
//! its ids; `unmatched` for any other path), the method (one of the standard methods, or
//! `other`) and the status code. No principal, candidate, purpose or any other value from a
//! request is ever a label, so the set of series is closed: no request can make it grow.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The method label: a standard method, or `other` (an invented method was once a label of
/// its own, and 50 requests with 60 KB method names grew `/metrics` to 72 MB).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
}

/// Request counters and latency histograms by (route, method, status).
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    in_flight: AtomicU64,
    quota_refusals: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut series = match self.series.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = series
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        if let Some(slot) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            if let Some(bucket) = entry.buckets.get_mut(slot) {
                *bucket += 1;
            }
        }
    }

    /// Counts an extract refused by the quota.
    pub fn quota_refused(&self) {
        self.quota_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let series = match self.series.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        out.push_str("# HELP cvvault_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE cvvault_http_requests_total counter\n");
        for ((route, method, status), s) in series.iter() {
            let _ = writeln!(
                out,
                "cvvault_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str(
            "# HELP cvvault_http_request_duration_seconds Time from request to response headers.\n",
        );
        out.push_str("# TYPE cvvault_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in series.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            let mut cumulative = 0u64;
            for (bound, n) in BUCKETS.iter().zip(s.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(out, "cvvault_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(
                out,
                "cvvault_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "cvvault_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "cvvault_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(series);
        out.push_str("# HELP cvvault_http_requests_in_flight Requests being served.\n");
        out.push_str("# TYPE cvvault_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "cvvault_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP cvvault_extract_quota_refusals_total Extracts refused because a principal's quota was used up.\n");
        out.push_str("# TYPE cvvault_extract_quota_refusals_total counter\n");
        let _ = writeln!(
            out,
            "cvvault_extract_quota_refusals_total {}",
            self.quota_refusals.load(Ordering::Relaxed)
        );
        out
    }
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: times every request and counts it by route template and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let method = method_label(request.method());
    let metrics = state.metrics();
    let in_flight = InFlight::enter(&metrics.in_flight);
    let response = next.run(request).await;
    drop(in_flight);
    metrics.observe(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition; labels are route templates, methods and statuses only", body = String, content_type = "text/plain"))
)]
pub async fn serve(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_cumulative_buckets_and_only_template_labels() {
        let metrics = Metrics::default();
        metrics.observe("/v1/candidates/{candidate_id}/extract", "GET", 200, 0.002);
        metrics.observe("/v1/candidates/{candidate_id}/extract", "GET", 200, 0.02);
        metrics.observe("/v1/candidates/{candidate_id}/extract", "GET", 404, 0.001);
        metrics.quota_refused();
        let text = metrics.render();
        assert!(text.contains(
            "cvvault_http_requests_total{route=\"/v1/candidates/{candidate_id}/extract\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"200\",le=\"0.0025\"} 1\n"), "{text}");
        assert!(text.contains("status=\"200\",le=\"0.025\"} 2\n"), "{text}");
        assert!(text.contains("status=\"200\",le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("cvvault_extract_quota_refusals_total 1\n"));
    }
}
