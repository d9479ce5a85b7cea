//! What a store's change feed tells the process following it: which domains
//! other writers changed (replicas, the CLI), so the routing cache forgets
//! them. The PostgreSQL store feeds it from `LISTEN/NOTIFY` on its change
//! log, the embedded store by polling its own log (see each store).

use std::time::Duration;

/// What a replica must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Domains(Vec<String>),
    Everything,
}

/// A batch of changes read from the log, and how long after being written
/// the newest of them was read (by the database's clock).
#[derive(Debug)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    pub lag: Option<Duration>,
}

/// Events of the feed for the process that follows it.
#[derive(Debug)]
pub enum FeedEvent {
    Changes(ChangeBatch),
    /// The feed's connection to the log is up (true) or lost (false).
    Connected(bool),
    /// The first catch-up on a connection is done (its changes were sent
    /// before this): from now on changes arrive as they are made.
    CaughtUp,
}
