//! Reading every route of the registry in one pass, for loading the warm
//! domain table: the store pushes rows into a [`RouteSink`] as it reads
//! them (no page of decoded rows kept, no query per page), and a store that
//! cannot stream falls back to `Store::routes_page`.

use super::{HostMatch, Store, StoreError};
use crate::tenant::Tenant;

/// Domains per `routes_page` query when a store cannot stream.
const PAGE: usize = 10_000;

/// Takes the routes a store reads, one domain at a time.
pub trait RouteSink: Send {
    /// About how many routes are coming (an upper bound where that is
    /// cheap to know), so buffers are sized once. May not be called.
    fn expect(&mut self, routes: usize) {
        let _ = routes;
    }

    /// Each tenant's domains come together, so a tenant given (`Some`) is
    /// one not seen before: the sink need not look for it among the others.
    fn grouped(&mut self) {}

    /// A second sink feeding the same place, for a store that reads on two
    /// threads at once (each sink gets whole tenants: a tenant's domains
    /// all go to one of them). `None`: this sink takes one reader only.
    /// Asked after `expect`, so a sink can answer from the size.
    fn split(&mut self) -> Option<Box<dyn RouteSink>> {
        None
    }

    /// One domain and its tenant; `None`: the same tenant as the route
    /// before (a store reading a tenant's domains together says so, and the
    /// tenant is neither decoded nor encoded again). Returns false to stop
    /// the read (the sink has all it takes).
    fn route(&mut self, tenant: Option<&Tenant>, domain: &str) -> bool;
}

/// The default `Store::scan_routes`: `routes_page` after `routes_page`.
pub(super) async fn by_pages<S: Store + ?Sized>(
    store: &S,
    mut sink: Box<dyn RouteSink>,
) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let page = store.routes_page(after.take(), PAGE).await?;
        let full_page = page.len() == PAGE;
        after = page.last().map(|m| m.domain.clone());
        for HostMatch { tenant, domain } in &page {
            if !sink.route(Some(tenant), domain) {
                return Ok(());
            }
        }
        if !full_page {
            return Ok(());
        }
    }
}
