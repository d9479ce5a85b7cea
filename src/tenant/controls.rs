//! A tenant's own traffic controls, kept with the tenant and changed through
//! the admin API: limits that override its plan's, and maintenance. The
//! data path reads them from the routed tenant; the plans' limits live in
//! the config (`plans:`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A request rate, written `20/s`, `600/m` or `3600/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Requests admitted per `per`.
    pub requests: u32,
    pub per: RatePeriod,
}

/// The period of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatePeriod {
    Second,
    Minute,
    Hour,
}

impl RatePeriod {
    pub fn seconds(self) -> u32 {
        match self {
            RatePeriod::Second => 1,
            RatePeriod::Minute => 60,
            RatePeriod::Hour => 3600,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            RatePeriod::Second => "s",
            RatePeriod::Minute => "m",
            RatePeriod::Hour => "h",
        }
    }
}

impl Rate {
    /// Requests per second (what a token bucket refills).
    pub fn per_second(self) -> f64 {
        f64::from(self.requests) / f64::from(self.per.seconds())
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        let bad =
            || format!("invalid rate '{s}': write requests per period, e.g. 20/s, 600/m or 3600/h");
        let (requests, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
        let per = match per.trim() {
            "s" | "sec" | "second" => RatePeriod::Second,
            "m" | "min" | "minute" => RatePeriod::Minute,
            "h" | "hour" => RatePeriod::Hour,
            _ => return Err(bad()),
        };
        if requests == 0 {
            return Err(format!(
                "invalid rate '{s}': must admit at least one request (suspend the tenant to refuse all)"
            ));
        }
        Ok(Rate { requests, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.requests, self.per.suffix())
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Limits a tenant has of its own; each one set overrides its plan's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Requests admitted per period (token bucket refill), e.g. `50/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "50/s")]
    pub rate: Option<Rate>,
    /// Requests admitted at once after a quiet spell (bucket size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Requests in flight at once; more wait up to the queue timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl TenantLimits {
    pub fn is_empty(&self) -> bool {
        *self == TenantLimits::default()
    }
}

/// A tenant under maintenance: its requests get 503, or wait up to `hold`
/// for maintenance to end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// How long a request waits for maintenance to end before its 503;
    /// none answers 503 at once.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, example = "10s")]
    pub hold: Option<Duration>,
    /// When it was switched on (RFC 3339, UTC).
    #[serde(default)]
    pub since: String,
}

/// The longest maintenance hold accepted: held requests keep their
/// connections open.
pub const MAX_HOLD: Duration = Duration::from_secs(3600);

impl Maintenance {
    /// Maintenance switched on now, holding requests up to `hold`.
    pub fn starting_now(hold: Option<Duration>) -> Maintenance {
        Maintenance {
            hold,
            since: crate::clock::now_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_print_the_same() {
        for text in ["20/s", "600/m", "3600/h"] {
            let rate: Rate = text.parse().unwrap();
            assert_eq!(rate.to_string(), text);
        }
        let rate: Rate = "600/m".parse().unwrap();
        assert!((rate.per_second() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn bad_rates_say_how_to_write_one() {
        for text in ["20", "x/s", "20/d", "-1/s", "0/s", ""] {
            let err = text.parse::<Rate>().unwrap_err();
            assert!(err.contains(text) && err.contains("/s"), "{text}: {err}");
        }
    }

    #[test]
    fn maintenance_holds_read_as_durations() {
        let m: Maintenance = serde_json::from_str(r#"{"hold":"10s"}"#).unwrap();
        assert_eq!(m.hold, Some(Duration::from_secs(10)));
        let limits: TenantLimits = serde_json::from_str(r#"{"rate":"50/s"}"#).unwrap();
        assert_eq!(limits.rate.unwrap().requests, 50);
        assert!(serde_json::from_str::<TenantLimits>(r#"{"rat":"50/s"}"#).is_err());
    }
}
