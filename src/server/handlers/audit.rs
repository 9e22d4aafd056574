//! Routes of the audit trail: export, inclusion proofs, the signed checkpoint.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;

use crate::clock::parse_time;
use crate::error::{Error, Result};
use crate::server::auth::Bearer;
use crate::server::openapi::AuthErrors;
use crate::server::problem::Problem;
use crate::server::AppState;

use super::*;

fn export_time(text: Option<String>) -> Result<Option<i64>> {
    text.map(|t| {
        parse_time(&t).ok_or_else(|| {
            Error::invalid_input(format!(
                "`{}` is not a time: use RFC 3339 (2026-11-23T08:00:00Z) or a date (2026-11-23)",
                crate::ids::printable(&t)
            ))
        })
    })
    .transpose()
}

/// Export audit entries as JSON lines, exactly the bytes that were hashed (DPO).
#[utoipa::path(
    get,
    path = "/v1/audit/entries",
    tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "One canonical entry per line, in log order", body = String, content_type = "application/x-ndjson"),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A time that does not parse", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_export(
    State(state): State<AppState>,
    bearer: Bearer,
    query_string: std::result::Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response> {
    let window = query(query_string);
    // Lines flow through a small channel, so a long trail is never held in memory whole.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes>>(8);
    let producer = sender.clone();
    tokio::spawn(async move {
        let exported = bearer
            .run(&state, move |vault, principal| {
                let window = window?;
                let (since, until) = (export_time(window.since)?, export_time(window.until)?);
                let mut chunk = Vec::with_capacity(64 * 1024);
                vault.audit_export(&principal, since, until, &mut |line| {
                    chunk.extend_from_slice(line.as_bytes());
                    chunk.push(b'\n');
                    if chunk.len() >= 60 * 1024 {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(64 * 1024));
                        producer
                            .blocking_send(Ok(Bytes::from(full)))
                            .map_err(|_| Error::invalid_input("the client went away"))?;
                    }
                    Ok(())
                })?;
                if !chunk.is_empty() {
                    let _ = producer.blocking_send(Ok(Bytes::from(chunk)));
                }
                Ok(())
            })
            .await;
        if let Err(e) = exported {
            let _ = sender.send(Err(e)).await;
        }
    });
    // The first message tells whether the export was authorized (a refusal comes first).
    let first = match receiver.recv().await {
        None => return Ok(bytes_response(StatusCode::OK, NDJSON, Body::empty())),
        Some(Err(e)) => return Err(e),
        Some(Ok(bytes)) => bytes,
    };
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let stream = futures_util::stream::once(async move { Ok(first) })
        .chain(rest)
        .map(|item| {
            item.map_err(|e| {
                tracing::error!(error = %e, "audit export broken off");
                std::io::Error::other("the audit export was broken off")
            })
        });
    Ok(bytes_response(
        StatusCode::OK,
        NDJSON,
        Body::from_stream(stream),
    ))
}

/// An inclusion proof of entry `index` against a fresh signed checkpoint (DPO).
#[utoipa::path(
    get,
    path = "/v1/audit/entries/{index}/proof",
    tag = "audit",
    params(("index" = u64, Path, description = "Entry index, from 0")),
    responses(
        (status = 200, description = "The proof (cvvault-inclusion-proof/v1)", body = Object),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an index, or no such entry", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_proof(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let index = path_text(path).and_then(|text| {
        text.parse::<u64>().map_err(|_| {
            Error::invalid_input(format!(
                "`{}` is not an entry index: use a whole number from 0",
                crate::ids::printable(&text)
            ))
        })
    });
    let proof = bearer
        .run(&state, move |vault, principal| {
            vault.audit_prove(&principal, index?)
        })
        .await?;
    json_response(StatusCode::OK, &proof)
}

/// The latest signed checkpoint (a C2SP signed note), signing one if the log grew. Any
/// authenticated principal: it holds a size and a root hash, nothing about anyone.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    responses(
        (status = 200, description = "The signed note", body = String, content_type = "text/plain"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_checkpoint(State(state): State<AppState>, bearer: Bearer) -> Result<Response> {
    let note = bearer
        .run(&state, |vault, _principal| vault.audit_checkpoint())
        .await?;
    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        note,
    ))
}
