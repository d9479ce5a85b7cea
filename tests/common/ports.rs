//! Free loopback ports for servers that must be told their port before
//! they start (PostgreSQL, pebble, a gateway pebble validates against).
//! Shared with `benches/provision.rs`, which includes `pg.rs` by path.

/// A loopback port free now, for a server that must be told its port before
/// it starts (PostgreSQL, pebble, a gateway pebble validates against).
///
/// Picked outside the kernel's ephemeral range (below it, else above it): a
/// port from `bind(0)` is released before the server binds it, and in
/// between any outgoing connection of a parallel test may take it as its
/// local port ("address already in use", seen in CI). Ports outside the
/// range are never handed out that way, and this process never hands out
/// one port twice. Without room outside the range, `bind(0)` it is.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let (low, high) = ephemeral_range();
    let outside = if low >= 12_000 {
        10_000..low
    } else if high <= 63_000 {
        high + 1..65_000
    } else {
        return kernel_port();
    };
    let mut handed_out = HANDED_OUT.lock().unwrap();
    for _ in 0..1000 {
        let port = fastrand::u16(outside.clone());
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port in {outside:?}");
}

/// The kernel's ephemeral port range (Linux's default when unknown).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut ends = range.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((ends.next()??, ends.next()??))
        })
        .unwrap_or((32768, 60999))
}

fn kernel_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
