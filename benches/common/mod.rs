//! What more than one bench needs: driving a future that must not wait, and
//! the benches' tenants.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tenant_gateway::tenant::{Isolation, Tenant, TenantStatus};

/// Polls a future that must complete at once (a cache hit, an admission
/// with a free slot); `what` names it in the panic when it would wait.
pub fn ready<F: Future>(future: F, what: &str) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected {what} to complete without waiting"),
    }
}

/// Tenant `i` of a bench: `tenant{i}`, schema `t_{i}`, active, on no pool,
/// plan or cluster and with no controls of its own.
pub fn tenant(i: usize) -> Tenant {
    Tenant {
        id: format!("tenant{i}"),
        name: format!("Tenant {i}"),
        schema: format!("t_{i}"),
        isolation: Isolation::Schema,
        status: TenantStatus::Active,
        pool: None,
        plan: None,
        cluster: None,
        created_at: String::new(),
        limits: None,
        maintenance: None,
    }
}
