//! Free loopback ports for servers that must be told their port before
//! they start (PostgreSQL, pebble, a gateway pebble validates against).
//! Shared with `benches/provision.rs`, which includes `pg.rs` by path.

/// A loopback port free now, for a server that must be told its port before
/// it starts (PostgreSQL, pebble, a gateway pebble validates against).
///
/// Picked below the kernel's ephemeral range: a port from `bind(0)` is
/// released before the server binds it, and in between any outgoing
/// connection of a parallel test may take it as its local port ("address
/// already in use", seen in CI). Ports below the range are never handed out
/// that way, and this process never hands out one port twice.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut handed_out = HANDED_OUT.lock().unwrap();
    for _ in 0..1000 {
        let port = fastrand::u16(10_000..ephemeral_low.max(10_001));
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral_low}");
}
