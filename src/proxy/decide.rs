//! Decide phase: the policy applied to a resolved host. Forward a known
//! active tenant; refuse a suspended one; answer an unknown host by the
//! configured action (404, the public tenant, or a redirect).

use std::sync::Arc;

use http::StatusCode;

use crate::config::{RoutingConfig, UnknownHostAction};
use crate::routing::{Resolution, RoutedTenant};
use crate::tenant::{Isolation, Tenant, TenantStatus, PUBLIC_TENANT_ID};

/// What the data path will do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    Forward(Arc<RoutedTenant>),
    /// The tenant exists but is suspended.
    Suspended {
        tenant: Arc<RoutedTenant>,
        status: StatusCode,
    },
    NotFound,
    Redirect(String),
}

/// The routing policy, built once from config.
#[derive(Debug)]
pub struct Policy {
    unknown: UnknownHostAction,
    redirect_to: String,
    public_tenant: Arc<RoutedTenant>,
    suspended_status: StatusCode,
}

impl Policy {
    pub fn from_config(config: &RoutingConfig) -> Policy {
        let public = Tenant {
            id: PUBLIC_TENANT_ID.into(),
            name: "public".into(),
            schema: "public".into(),
            isolation: Isolation::Schema,
            status: TenantStatus::Active,
            pool: config.unknown_host.public_pool.clone(),
            plan: None,
            cluster: None,
            created_at: String::new(),
            limits: None,
            maintenance: None,
        };
        Policy {
            unknown: config.unknown_host.action,
            redirect_to: config.unknown_host.redirect_to.clone().unwrap_or_default(),
            public_tenant: Arc::new(RoutedTenant::new(public, String::new())),
            suspended_status: StatusCode::from_u16(config.suspended_status)
                .unwrap_or(StatusCode::FORBIDDEN),
        }
    }

    pub fn decide(&self, resolution: &Resolution) -> Decision {
        match resolution {
            Resolution::Tenant(t) if t.tenant.status == TenantStatus::Suspended => {
                Decision::Suspended {
                    tenant: t.clone(),
                    status: self.suspended_status,
                }
            }
            Resolution::Tenant(t) => Decision::Forward(t.clone()),
            Resolution::Unknown => match self.unknown {
                UnknownHostAction::NotFound => Decision::NotFound,
                UnknownHostAction::Public => Decision::Forward(self.public_tenant.clone()),
                UnknownHostAction::Redirect => Decision::Redirect(self.redirect_to.clone()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_hosts_follow_the_configured_action() {
        let mut config = RoutingConfig::default();
        assert!(matches!(
            Policy::from_config(&config).decide(&Resolution::Unknown),
            Decision::NotFound
        ));
        config.unknown_host.action = UnknownHostAction::Public;
        match Policy::from_config(&config).decide(&Resolution::Unknown) {
            Decision::Forward(t) => assert_eq!(t.schema_value.as_ref().unwrap(), "public"),
            other => panic!("expected the public tenant, got {other:?}"),
        }
        config.unknown_host.action = UnknownHostAction::Redirect;
        config.unknown_host.redirect_to = Some("https://example.com/signup".into());
        assert!(
            matches!(Policy::from_config(&config).decide(&Resolution::Unknown), Decision::Redirect(u) if u == "https://example.com/signup")
        );
    }
}
