//! What more than one bench needs: driving a future that must not wait.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

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
