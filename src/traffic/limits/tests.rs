//! The limiter's rules without a socket: the override merge, the default
//! burst, admission under each limit, and changes applying to the next
//! request.

use super::*;

fn tenant(id: &str, plan: Option<&str>, limits: Option<TenantLimits>) -> Tenant {
    Tenant {
        plan: plan.map(Into::into),
        limits,
        ..Tenant::example(id)
    }
}

fn limits(rate: Option<&str>, burst: Option<u32>, concurrency: Option<u32>) -> TenantLimits {
    TenantLimits {
        rate: rate.map(|r| r.parse().unwrap()),
        burst,
        concurrency,
    }
}

fn plans(entries: &[(&str, TenantLimits)]) -> BTreeMap<String, PlanConfig> {
    entries
        .iter()
        .map(|(name, limits)| {
            (
                name.to_string(),
                PlanConfig {
                    pool: None,
                    limits: limits.clone(),
                },
            )
        })
        .collect()
}

fn config(queue_timeout_ms: u64, queue_size: u32) -> LimitsConfig {
    LimitsConfig {
        queue_timeout: Duration::from_millis(queue_timeout_ms),
        queue_size,
        ..LimitsConfig::default()
    }
}

#[test]
fn a_tenants_own_limits_override_its_plans_field_by_field() {
    let plan = limits(Some("20/s"), Some(40), Some(10));
    let own = limits(Some("50/s"), None, None);
    let merged = Effective::merge(Some(&plan), Some(&own));
    assert_eq!(merged.rate, Some("50/s".parse().unwrap()));
    assert_eq!((merged.burst, merged.concurrency), (40, Some(10)));
    let own = limits(None, Some(5), Some(2));
    let merged = Effective::merge(Some(&plan), Some(&own));
    assert_eq!(merged.rate, Some("20/s".parse().unwrap()));
    assert_eq!((merged.burst, merged.concurrency), (5, Some(2)));
    // Without a plan, the tenant's alone; without either, none.
    let merged = Effective::merge(None, Some(&limits(None, None, Some(3))));
    assert_eq!((merged.rate, merged.concurrency), (None, Some(3)));
    assert!(Effective::merge(None, None).is_unlimited());
}

#[test]
fn the_burst_defaults_to_one_second_of_the_rate() {
    let burst = |rate: &str| Effective::merge(None, Some(&limits(Some(rate), None, None))).burst;
    assert_eq!(burst("20/s"), 20);
    assert_eq!(burst("600/m"), 10);
    assert_eq!(burst("90/m"), 2);
    assert_eq!(burst("3600/h"), 1);
    assert_eq!(burst("1/h"), 1);
}

#[tokio::test]
async fn no_limits_anywhere_is_the_fast_path_and_keeps_no_state() {
    let limiter = Limiter::new(&plans(&[("free", TenantLimits::default())]), &config(10, 1));
    let free = tenant("a", Some("free"), None);
    assert!(!limiter.applies(&free));
    assert!(limiter.admit(&free).await.unwrap().is_none());
    assert_eq!(limiter.tenants_held(), 0);
}

#[tokio::test]
async fn a_plans_rate_refuses_past_the_burst_with_the_wait() {
    let limiter = Limiter::new(
        &plans(&[("free", limits(Some("10/s"), Some(2), None))]),
        &config(10, 1),
    );
    let a = tenant("a", Some("free"), None);
    let other = tenant("b", Some("free"), None);
    assert!(limiter.applies(&a));
    limiter.admit(&a).await.unwrap().unwrap();
    limiter.admit(&a).await.unwrap().unwrap();
    match limiter.admit(&a).await.unwrap_err() {
        Refusal::Rate { rate, retry_after } => {
            assert_eq!(rate.to_string(), "10/s");
            assert!(
                retry_after > Duration::from_millis(50)
                    && retry_after <= Duration::from_millis(100),
                "{retry_after:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Each tenant has its own bucket.
    assert!(limiter.admit(&other).await.is_ok());
    // A tenant of a plan without limits is not limited.
    let premium = tenant("c", Some("premium"), None);
    assert!(limiter.admit(&premium).await.unwrap().is_none());
}

#[tokio::test]
async fn a_concurrency_cap_holds_slots_until_the_admission_is_dropped() {
    let limiter = Limiter::new(&BTreeMap::new(), &config(30, 1));
    let a = tenant("a", None, Some(limits(None, None, Some(1))));
    let first = limiter.admit(&a).await.unwrap().unwrap();
    let refused = limiter.admit(&a).await.unwrap_err();
    assert_eq!(
        refused,
        Refusal::Concurrency {
            retry_after: Duration::from_millis(30)
        }
    );
    drop(first);
    let again = limiter.admit(&a).await.unwrap().unwrap();
    // Given back (a handover): the slot is free again.
    again.give_back();
    assert!(limiter.admit(&a).await.is_ok());
}

#[tokio::test]
async fn reloaded_plans_and_changed_tenant_limits_apply_to_the_next_request() {
    let limiter = Limiter::new(
        &plans(&[("free", limits(Some("1/h"), None, None))]),
        &config(10, 1),
    );
    let a = tenant("a", Some("free"), None);
    limiter.admit(&a).await.unwrap();
    assert!(limiter.admit(&a).await.is_err());
    // The tenant's own rate (an admin update) wins at once.
    let raised = tenant(
        "a",
        Some("free"),
        Some(limits(Some("1000/s"), Some(1000), None)),
    );
    assert_eq!(limiter.effective(&raised).burst, 1000);
    // The hour owed at 1/h is not owed at 1000/s.
    assert!(limiter.admit(&raised).await.is_ok());
    // A reload without limits: nothing is limited any more.
    limiter.reconfigure(&plans(&[("free", TenantLimits::default())]), &config(10, 1));
    assert!(!limiter.applies(&a));
    assert!(limiter.admit(&a).await.unwrap().is_none());
}
