//! Admit phase (after decide, for both HTTP/1 engines and HTTP/2): holds a
//! tenant to its rate limit and concurrency cap (`traffic::limits`). Over the
//! rate gets `429` with `Retry-After` and the `RateLimit-Policy` /
//! `RateLimit` fields; beyond the cap, after waiting in the queue, `503`
//! with `Retry-After`. The admission, with its slot, travels in the
//! `Exchange` and then with the streamed body until the response is done.

use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderName, HeaderValue, Response, StatusCode};

use super::respond::{self, ProxyBody};
use super::{Exchange, Proxy};
use crate::metrics::Outcome;
use crate::routing::RoutedTenant;
use crate::traffic::limits::Refusal;

// The field syntax of draft-ietf-httpapi-ratelimit-headers-10 (September
// 2025; unchanged in -11): `RateLimit-Policy: "default";q=20;w=1` (quota q
// per window w seconds) and `RateLimit: "default";r=0;t=1` (r remaining,
// t seconds until the quota is back).
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Proxy {
    /// Admits a request of `tenant` under its limits, or gives the answer
    /// instead. Only called when the limiter applies to the tenant.
    pub(crate) async fn admit(
        &self,
        tenant: &RoutedTenant,
        ex: &mut Exchange,
    ) -> Result<(), Response<ProxyBody>> {
        match self.shared.limiter.admit(&tenant.tenant).await {
            Ok(admitted) => {
                ex.admitted = admitted;
                Ok(())
            }
            Err(refusal) => Err(refused(&refusal, ex)),
        }
    }
}

/// The 429 or 503 for a refusal, with the outcome set for the log phase.
fn refused(refusal: &Refusal, ex: &mut Exchange) -> Response<ProxyBody> {
    match refusal {
        Refusal::Rate { rate, retry_after } => {
            ex.outcome = Some(Outcome::RateLimited);
            let seconds = whole_seconds(*retry_after);
            let mut response = respond::text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests: over the rate limit, retry later\n",
            );
            let headers = response.headers_mut();
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
            let policy = format!("\"default\";q={};w={}", rate.requests, rate.per.seconds());
            if let Ok(policy) = HeaderValue::from_str(&policy) {
                headers.insert(RATELIMIT_POLICY.clone(), policy);
            }
            if let Ok(now) = HeaderValue::from_str(&format!("\"default\";r=0;t={seconds}")) {
                headers.insert(RATELIMIT.clone(), now);
            }
            response
        }
        Refusal::Concurrency { retry_after } => {
            ex.outcome = Some(Outcome::ConcurrencyLimited);
            let mut response = respond::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable: too many requests in flight for this site, retry later\n",
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(whole_seconds(*retry_after)));
            response
        }
    }
}

/// Seconds rounded up, at least 1 (`Retry-After` has no fractions).
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_refusal_says_when_to_retry_and_the_policy() {
        let mut ex = Exchange::default();
        let refusal = Refusal::Rate {
            rate: "600/m".parse().unwrap(),
            retry_after: Duration::from_millis(1_200),
        };
        let response = refused(&refusal, &mut ex);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("retry-after"), "2");
        assert_eq!(header("ratelimit-policy"), "\"default\";q=600;w=60");
        assert_eq!(header("ratelimit"), "\"default\";r=0;t=2");
        assert_eq!(ex.outcome, Some(Outcome::RateLimited));
    }

    #[test]
    fn a_concurrency_refusal_is_a_503_with_retry_after() {
        let mut ex = Exchange::default();
        let refusal = Refusal::Concurrency {
            retry_after: Duration::from_millis(250),
        };
        let response = refused(&refusal, &mut ex);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(response.headers().get("ratelimit").is_none());
        assert_eq!(ex.outcome, Some(Outcome::ConcurrencyLimited));
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }
}
