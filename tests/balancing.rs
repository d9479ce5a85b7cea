//! How a pool spreads requests: tenant affinity keeps each tenant on one
//! backend while tenants spread over the pool, weighted round robin honours
//! the weights, and least requests steers clear of a busy backend.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{pool_config, Backend, Gateway, GatewayOptions};
use serde_json::json;

#[tokio::test]
async fn tenant_affinity_keeps_each_tenant_on_one_backend_and_spreads_tenants() {
    let apps = [
        Backend::start("app-0").await,
        Backend::start("app-1").await,
        Backend::start("app-2").await,
    ];
    let config = pool_config(
        &apps.iter().map(Backend::yaml).collect::<Vec<_>>(),
        &["balance: tenant_affinity"],
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;
    let tenants: Vec<String> = (0..12).map(|i| format!("tenant{i}")).collect();
    for id in &tenants {
        gw.create_tenant(json!({"id": id, "name": id, "domains": [format!("{id}.test")]}))
            .await;
    }

    let mut homes = HashMap::new();
    for id in &tenants {
        let mut served_by = HashSet::new();
        for _ in 0..8 {
            let reply = gw.get(&format!("{id}.test"), "/").await;
            served_by.insert(reply.seen().backend().to_owned());
        }
        assert_eq!(served_by.len(), 1, "{id} was served by {served_by:?}");
        homes.insert(id.clone(), served_by.into_iter().next().expect("a backend"));
    }
    let used: HashSet<&String> = homes.values().collect();
    assert!(
        used.len() >= 2,
        "12 tenants all landed on one backend: {homes:?}"
    );
}

#[tokio::test]
async fn weighted_round_robin_honours_the_weights() {
    let heavy = Backend::start("heavy").await;
    let light = Backend::start("light").await;
    let config = pool_config(
        &[
            format!("{{url: \"{}\", weight: 3}}", heavy.url),
            format!("{{url: \"{}\", weight: 1}}", light.url),
        ],
        &["balance: round_robin"],
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;

    let mut heavy_count = 0;
    for _ in 0..80 {
        if gw.get("acme.test", "/").await.seen().backend() == "heavy" {
            heavy_count += 1;
        }
    }
    assert!(
        (54..=66).contains(&heavy_count),
        "weight 3:1 sent {heavy_count} of 80 requests to the heavy backend, not about 60"
    );
}

#[tokio::test]
async fn least_requests_steers_clear_of_a_busy_backend() {
    let fast = Backend::start("fast").await;
    let busy = Backend::start_slow("busy", Duration::from_millis(300)).await;
    let config = pool_config(&[fast.yaml(), busy.yaml()], &["balance: least_requests"]);
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;

    let load = gw.load("acme.test", 4);
    load.wait_for(300, Duration::from_secs(15), "300 answers", |_| true)
        .await;
    let outcomes = load.stop().await;

    assert!(outcomes.iter().all(|o| o.ok()), "every request is served");
    let on_busy = outcomes.iter().filter(|o| o.served_by("busy")).count();
    assert!(
        on_busy * 10 < outcomes.len(),
        "the busy backend got {on_busy} of {} requests (round robin would give it half)",
        outcomes.len()
    );
}
