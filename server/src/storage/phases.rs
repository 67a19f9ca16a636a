//! Where a request's time goes inside the office: the wait for its turn at the database, its
//! work inside the write transaction (and of that, the SQL statements, the compaction of a
//! case's chunks into a new snapshot, loading documents not in memory), and the commit.
//!
//! Counted per request on the thread that runs its transaction: [`collect`] opens a tally on
//! this thread, the storage code adds to it with [`time`] wherever it does one of those things,
//! and the tally is handed back when the closure ends. Outside a collected request the adds
//! cost one thread-local read. The sync endpoint answers the tally as a `Server-Timing`
//! header when the office is configured to (`server_timing = true`), so the load run can say
//! where its slowest syncs spent their time.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The parts of a request's time the office tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// SQL statements run inside the transaction.
    Sql,
    /// Compacting a case's stored chunks into a new sealed snapshot (automerge save, sealing,
    /// reloading the document, and the statements that write it: also counted in `Sql`).
    Compact,
    /// Loading a case document the office did not hold in memory (also counted in `Sql` for
    /// its reads).
    Load,
    /// Committing the transaction (on SQLite the WAL's fsync, and a checkpoint when one runs in
    /// the commit).
    Commit,
    /// Waiting for the locks of another instance's or request's writes (on PostgreSQL: the
    /// write lock, the device's and the cases' locks, the commit order; not counted in `Sql`).
    Lock,
}

/// One request's tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Waiting for the request's turn at the database (the write gate).
    pub turn: Duration,
    /// The whole transaction from its start to the end of its commit.
    pub transaction: Duration,
    /// See [`Phase::Sql`].
    pub sql: Duration,
    /// See [`Phase::Compact`].
    pub compact: Duration,
    /// See [`Phase::Load`].
    pub load: Duration,
    /// See [`Phase::Commit`].
    pub commit: Duration,
    /// See [`Phase::Lock`].
    pub lock: Duration,
    /// How long the transaction held what orders every writer: the global write lock held
    /// exclusively (every SQLite write, an exclusive PostgreSQL write), or the commit order (a
    /// PostgreSQL sync from the moment it took it: see `Sql::enter_commit_order`), until its
    /// end. The part of a write that cannot run beside other writes on any instance.
    pub held: Duration,
}

impl Phases {
    /// The tally as a `Server-Timing` header value (milliseconds, three decimals), with `total`
    /// the whole time the request spent in the handler.
    pub fn server_timing(&self, total: Duration) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "turn;dur={:.3}, tx;dur={:.3}, sql;dur={:.3}, compact;dur={:.3}, load;dur={:.3}, commit;dur={:.3}, lock;dur={:.3}, held;dur={:.3}, total;dur={:.3}",
            ms(self.turn),
            ms(self.transaction),
            ms(self.sql),
            ms(self.compact),
            ms(self.load),
            ms(self.commit),
            ms(self.lock),
            ms(self.held),
            ms(total)
        )
    }

    fn add(&mut self, phase: Phase, d: Duration) {
        let slot = match phase {
            Phase::Sql => &mut self.sql,
            Phase::Compact => &mut self.compact,
            Phase::Load => &mut self.load,
            Phase::Commit => &mut self.commit,
            Phase::Lock => &mut self.lock,
        };
        *slot = slot.saturating_add(d);
    }

    /// This tally with `other`'s durations added (a request of several transactions).
    pub fn plus(mut self, other: Phases) -> Phases {
        self.turn = self.turn.saturating_add(other.turn);
        self.transaction = self.transaction.saturating_add(other.transaction);
        self.sql = self.sql.saturating_add(other.sql);
        self.compact = self.compact.saturating_add(other.compact);
        self.load = self.load.saturating_add(other.load);
        self.commit = self.commit.saturating_add(other.commit);
        self.lock = self.lock.saturating_add(other.lock);
        self.held = self.held.saturating_add(other.held);
        self
    }
}

thread_local! {
    static TALLY: Cell<Option<Phases>> = const { Cell::new(None) };
    /// When the running transaction began to hold what orders every writer ([`hold`]).
    static HELD_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Marks that the transaction running on this thread holds, from now until its end
/// ([`release`]), what orders every writer (see [`Phases::held`]). A second mark keeps the
/// first.
pub fn hold() {
    HELD_SINCE.with(|h| {
        if h.get().is_none() {
            h.set(Some(Instant::now()));
        }
    });
}

/// Whether the transaction running on this thread holds what orders every writer ([`hold`]):
/// then it must not wait for anything another writer does.
pub fn holding() -> bool {
    HELD_SINCE.with(|h| h.get().is_some())
}

/// Ends what [`hold`] marked (the transaction committed or rolled back) and adds its time to
/// the tally open on this thread, if any.
pub fn release() {
    let Some(since) = HELD_SINCE.with(|h| h.take()) else {
        return;
    };
    let took = since.elapsed();
    TALLY.with(|t| {
        if let Some(mut tally) = t.get() {
            tally.held = tally.held.saturating_add(took);
            t.set(Some(tally));
        }
    });
}

/// Runs `f` (a transaction) with a tally open on this thread and returns its result with what
/// was counted, the whole run as [`Phases::transaction`]. A tally already open (a nested call)
/// keeps counting and gets the inner counts too.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Phases) {
    let outer = TALLY.with(|t| t.replace(Some(Phases::default())));
    let started = Instant::now();
    let out = f();
    let mut tally = TALLY.with(|t| t.replace(outer)).unwrap_or_default();
    tally.transaction = started.elapsed();
    if let Some(outer) = outer {
        TALLY.with(|t| t.set(Some(outer.plus(tally))));
    }
    (out, tally)
}

/// Runs `f` and adds its time to `phase` of the tally open on this thread, if any.
pub fn time<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    if TALLY.with(|t| t.get().is_none()) {
        return f();
    }
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    TALLY.with(|t| {
        if let Some(mut tally) = t.get() {
            tally.add(phase, took);
            t.set(Some(tally));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_only_inside_collect_and_nested_counts_reach_the_outer_one() {
        time(Phase::Sql, || std::thread::sleep(Duration::from_millis(2)));
        let ((), outer) = collect(|| {
            time(Phase::Sql, || std::thread::sleep(Duration::from_millis(2)));
            let ((), inner) = collect(|| {
                time(Phase::Commit, || {
                    std::thread::sleep(Duration::from_millis(2))
                });
            });
            assert!(inner.commit >= Duration::from_millis(2));
            assert_eq!(inner.sql, Duration::ZERO);
        });
        assert!(outer.sql >= Duration::from_millis(2));
        assert!(outer.commit >= Duration::from_millis(2));
        assert!(outer.transaction >= outer.sql + outer.commit);
        let header = outer.server_timing(Duration::from_millis(9));
        assert!(header.starts_with("turn;dur=0.000, tx;dur="), "{header}");
        assert!(header.ends_with("total;dur=9.000"), "{header}");
    }
}
