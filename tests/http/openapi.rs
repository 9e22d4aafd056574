//! The OpenAPI document against the router: every operation it lists is called (path
//! parameters filled with real ids, bodies from the document's examples) as several
//! principals and without a token, and every status that comes back must be one the document
//! lists for that operation.

use axum::http::Method;

use crate::support::{Api, LIMITS};

/// The example of an operation's JSON request body: inline, or from the referenced schema.
fn example_body(doc: &serde_json::Value, operation: &serde_json::Value) -> Option<String> {
    let content = operation
        .get("requestBody")?
        .get("content")?
        .get("application/json")?;
    if let Some(example) = content.get("example") {
        return Some(example.to_string());
    }
    let reference = content.get("schema")?.get("$ref")?.as_str()?;
    let name = reference.rsplit('/').next()?;
    let schema = doc.get("components")?.get("schemas")?.get(name)?;
    Some(
        schema
            .get("example")
            .unwrap_or_else(|| panic!("schema {name} has no example"))
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_with_a_documented_status() {
    let api = Api::new(LIMITS);
    let doc = api
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 17, "{:?}", paths.keys().collect::<Vec<_>>());

    let mut calls = 0;
    for principal in ["cw", "dpo", "emp", "coach", ""] {
        // Fresh targets per principal: one of them may erase or close what another needs.
        let candidate = api.register("OPENAPI", false, true);
        let assignment = api.assign(candidate, "emp-org", "matching", "recruitment");
        for (template, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                let path = template
                    .replace("{candidate_id}", &candidate.to_string())
                    .replace("{assignment_id}", &assignment.to_string())
                    .replace("{index}", "0");
                let mut query = Vec::new();
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] == "query" && parameter["required"] == true {
                        let example = parameter["example"]
                            .as_str()
                            .or(parameter["schema"]["example"].as_str())
                            .unwrap_or("recruitment");
                        query.push(format!("{}={example}", parameter["name"].as_str().unwrap()));
                    }
                }
                let uri = if query.is_empty() {
                    path
                } else {
                    format!("{path}?{}", query.join("&"))
                };
                let body = example_body(&doc, operation);
                let secured = operation.get("security").is_some();
                let token = if principal.is_empty() {
                    None
                } else {
                    Some(api.token(principal))
                };
                let method: Method = method.to_uppercase().parse().unwrap();
                let reply = api
                    .call(
                        method.clone(),
                        &uri,
                        token,
                        body.as_deref().map(str::as_bytes),
                    )
                    .await;
                calls += 1;
                let status = reply.status.as_u16().to_string();
                let documented = operation["responses"].as_object().unwrap();
                assert!(
                    documented.contains_key(&status),
                    "{method} {template} as {principal:?} answered {status}, not in {:?}: {}",
                    documented.keys().collect::<Vec<_>>(),
                    reply.text()
                );
                if secured && token.is_none() {
                    assert_eq!(status, "401", "{method} {template}");
                }
                // The documented media type is the one sent.
                let content_type = reply.content_type().split(';').next().unwrap().to_owned();
                if let Some(content) = documented[&status]
                    .get("content")
                    .and_then(|c| c.as_object())
                {
                    assert!(
                        content.contains_key(&content_type),
                        "{method} {template} {status}: {content_type} not in {:?}",
                        content.keys().collect::<Vec<_>>()
                    );
                }
            }
        }
    }
    assert!(calls >= 85, "{calls}");
}
