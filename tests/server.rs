//! The server in-process on a random port: health, readiness, metrics, problem+json, and a
//! graceful shutdown that releases this instance's leases.

mod common;

use std::sync::Arc;
use std::time::Duration;

use forfall::clock::SystemClock;
use forfall::store::Store;

on_both_backends!(
    health_ready_and_metrics_answer_and_unknown_routes_are_problem_json,
    shutdown_releases_the_instances_leases,
);

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(store: Arc<dyn Store>, owner: &str) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let owner = owner.to_owned();
    let done = tokio::spawn(async move {
        forfall::server::serve(
            listener,
            store,
            Arc::new(SystemClock),
            owner,
            Duration::from_secs(5),
            async {
                let _ = stopped.await;
            },
            forfall::server::Background::default(),
        )
        .await
        .expect("serve");
    });
    Running { base, stop, done }
}

async fn health_ready_and_metrics_answer_and_unknown_routes_are_problem_json(
    store: Arc<dyn Store>,
) {
    let server = start(store, "test-instance").await;
    let client = reqwest::Client::new();
    let live = client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = client
        .get(format!("{}/health/ready", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");

    let missing = client
        .get(format!("{}/no/such/route", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert!(problem["type"].as_str().unwrap().contains("not-found"));

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "forfall_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "{text}"
    );

    server.stop.send(()).unwrap();
    server.done.await.unwrap();
}

async fn shutdown_releases_the_instances_leases(store: Arc<dyn Store>) {
    let now = chrono::Utc::now();
    let ttl = Duration::from_secs(3600);
    assert!(
        store
            .acquire_lease("tick:cred_1", "instance-a", now, ttl)
            .await
            .unwrap()
    );
    let server = start(store.clone(), "instance-a").await;
    assert!(
        !store
            .acquire_lease("tick:cred_1", "instance-b", now, ttl)
            .await
            .unwrap()
    );
    server.stop.send(()).unwrap();
    server.done.await.unwrap();
    // Released at shutdown: free for another instance at once, long before it would expire.
    assert!(
        store
            .acquire_lease("tick:cred_1", "instance-b", now, ttl)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn openapi_yaml_is_what_the_server_serves_and_describes_every_route() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    let dir = tempfile::tempdir().unwrap();
    let store = forfall::store::open(&forfall::store::StoreOptions {
        url: format!("sqlite://{}/forfall.db", dir.path().display()),
        max_connections: 2,
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let server = start(store, "openapi-test").await;
    let served = reqwest::get(format!("{}/openapi.yaml", server.base))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.text().await.unwrap(),
        file,
        "openapi.yaml differs from what is served"
    );
    let document: serde_json::Value =
        serde_yaml_ng::from_str(&file).expect("openapi.yaml is valid YAML");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    for (path, _) in forfall::api::routes() {
        assert!(
            paths.contains_key(path),
            "route {path} is missing from openapi.yaml"
        );
    }
    assert_eq!(
        paths.len(),
        forfall::api::routes().len(),
        "openapi.yaml describes a route the server lacks"
    );
    server.stop.send(()).unwrap();
    server.done.await.unwrap();
}

/// Loaders of YAML 1.1 (PyYAML, many validators) read a bare `on`, `off`, `yes`, `no`, `y` or `n`
/// as a boolean: `required: [on]` or `enum: [NO]` would then say something else than the server
/// does. Every such word in openapi.yaml is quoted where it stands as a key or a list item.
#[test]
fn openapi_yaml_reads_the_same_to_yaml_1_1_loaders() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    let words = ["on", "off", "yes", "no", "y", "n", "true", "false"];
    let is_word = |token: &str| words.contains(&token.trim().to_ascii_lowercase().as_str());
    let mut found = Vec::new();
    for (n, line) in file.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        let trimmed = code.trim_start().trim_start_matches("- ");
        // A bare key (`on: …`) or a bare flow item (`[kind, on]`), outside descriptions.
        if let Some((key, _)) = trimmed.split_once(':')
            && is_word(key)
            && !key.contains('"')
        {
            found.push(format!("line {}: key {key}", n + 1));
        }
        if let (Some(open), Some(close)) = (code.find('['), code.rfind(']'))
            && open < close
            && (code.contains("required:") || code.contains("enum:"))
        {
            for item in code[open + 1..close].split(',') {
                if is_word(item) && !item.contains('"') {
                    found.push(format!("line {}: item {}", n + 1, item.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "quote these: {found:?}");
}
