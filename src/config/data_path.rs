//! What the data path reads from the config: the routing cache, the Host
//! rules and the unknown-host answer, the injected header names, and the
//! request limits (with the byte sizes they are written in) and the queue
//! of requests beyond a tenant's concurrency cap.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::SigningConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a known host stays cached.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How long an unknown host stays cached, so junk hosts can't hammer the store.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    pub max_entries: u64,
    /// Load the whole domain table into the cache at start, so the first
    /// requests are hits (stores that cannot page load on demand instead).
    pub warm: bool,
    /// Most domains the warm domain table holds. A registry with more makes
    /// the table partial: hosts it lacks are then looked up in the store.
    pub table_max_domains: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            max_entries: 2_000_000,
            warm: true,
            table_max_domains: 20_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownHostAction {
    /// `404 no tenant for hostname <host>`.
    #[default]
    NotFound,
    /// Route to the public tenant (schema `public`).
    Public,
    /// Redirect to `redirect_to`.
    Redirect,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UnknownHostConfig {
    pub action: UnknownHostAction,
    /// Target of the `redirect` action (absolute http or https URL).
    pub redirect_to: Option<String>,
    /// Pool of the public tenant; `default` when absent.
    pub public_pool: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Drop one leading `www.` from hosts (and from registered domains).
    pub strip_www: bool,
    pub unknown_host: UnknownHostConfig,
    /// Status answered for a suspended tenant.
    pub suspended_status: u16,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strip_www: true,
            unknown_host: UnknownHostConfig::default(),
            suspended_status: 403,
        }
    }
}

/// Names of the headers the gateway injects (and always strips from clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNamesConfig {
    pub tenant_id: String,
    pub schema: String,
    pub database: String,
    pub cache_prefix: String,
    /// `X-Tenant-Cluster`, for tenants placed on a named cluster.
    pub cluster: String,
    pub request_id: String,
    /// `X-Tenant-Signature`, sent when `signing` is configured.
    pub signature: String,
    /// Sign the tenant headers with a shared secret; off when absent.
    pub signing: Option<SigningConfig>,
}

impl Default for HeaderNamesConfig {
    fn default() -> Self {
        HeaderNamesConfig {
            tenant_id: "X-Tenant-ID".into(),
            schema: "X-Tenant-Schema".into(),
            database: "X-Tenant-Database".into(),
            cache_prefix: "X-Tenant-Cache-Prefix".into(),
            cluster: "X-Tenant-Cluster".into(),
            request_id: "X-Request-ID".into(),
            signature: "X-Tenant-Signature".into(),
            signing: None,
        }
    }
}

/// Which engine serves HTTP/1.1 connections (`data_path.http1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Http1Engine {
    /// hyper's server and client (HTTP/2 always runs on hyper).
    Hyper,
    /// The gateway's own HTTP/1.1 path (`proxy::lean`), which hands a
    /// connection to hyper for what it does not serve itself.
    #[default]
    Lean,
}

/// How the data path speaks HTTP.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataPathConfig {
    pub http1: Http1Engine,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body forwarded (bytes, or "10MiB"); larger gets 413.
    #[serde(deserialize_with = "byte_size")]
    pub max_request_body: u64,
    /// A client must send its request headers within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a request beyond its tenant's concurrency cap waits for a
    /// slot before its 503.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// How many requests of one tenant may wait for a slot at once; more
    /// get their 503 at once.
    pub queue_size: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_body: 10 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_secs(1),
            queue_size: 100,
        }
    }
}

/// Accepts `1048576`, `"512KiB"`, `"10MiB"`, `"1GB"`.
fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    // A visitor rather than an untagged enum, whose error for anything else
    // (`-1`, `1.5`) is "did not match any variant" and says nothing of sizes.
    struct ByteSize;
    impl serde::de::Visitor<'_> for ByteSize {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size like `10MiB` or a non-negative number of bytes")
        }
        fn visit_u64<E: serde::de::Error>(self, bytes: u64) -> Result<u64, E> {
            Ok(bytes)
        }
        fn visit_i64<E: serde::de::Error>(self, bytes: i64) -> Result<u64, E> {
            u64::try_from(bytes)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(bytes), &self))
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            parse_byte_size(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_any(ByteSize)
}

pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 10MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}
