//! Progress of one sync, for the phone's progress bar: how many cases and bytes are done and
//! how many are expected, in events that never go backwards.
//!
//! What is expected comes from two places: uploads from what the store has pending (the cases
//! in this round's request and those left for later rounds, whose size is estimated from the
//! rounds sent so far), downloads from what the office says it still has to send after each
//! page ([`super::messages::Remaining`]; an office that does not say leaves downloads unknown
//! until they arrive). Estimates are revised every round; the [`Tracker`] turns them into
//! events that hold three rules, whatever the estimates do:
//!
//! - `done` never decreases, and neither does `expected`;
//! - `done <= expected`;
//! - the last event (`finished`) has `done == expected`.
//!
//! Work counts as done when it moved (a case sent or received, the bytes of a request and its
//! answer), and also when it turns out not to be needed: a case the office counted as left and
//! then had nothing to send (the device held it as it was), or bytes estimated and never sent,
//! count as done once they are no longer left. So a count of cases is of *case transfers*: a
//! case both sent and received counts twice.
//!
//! Events reach the app's listener on a thread of their own ([`Delivery`]): the sync never
//! waits for a listener (a slow one is sent only the latest event when it is ready again), a
//! listener that panics is sent nothing more and the sync goes on, and a listener is never
//! called while the store is locked for the sync. A [`SyncProgress`] holds counts only: a
//! listener cannot see which cases, or anything of them.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One progress event of a sync: counts only, nothing that names or shows a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Case transfers done (each case sent, each case received or found up to date).
    pub cases_done: u64,
    /// Case transfers expected in all, as far as known now; never below `cases_done`.
    pub cases_expected: u64,
    /// Bytes done: the bytes of the requests sent and the answers received, plus estimated
    /// bytes that turned out not to be needed.
    pub bytes_done: u64,
    /// Bytes expected in all, as far as known now; never below `bytes_done`.
    pub bytes_expected: u64,
    /// The sync is over: the last event of this sync, with `done == expected`. A sync that
    /// fails ends without one (the error says why).
    pub finished: bool,
}

/// What an app passes to follow a sync (the bindings pass the app's foreign listener).
pub trait ProgressListener: Send + Sync {
    /// One event. Called on a thread of the sync's own, never with the store locked; events of
    /// one sync arrive in order, possibly not all of them (a slow listener gets the latest).
    fn on_progress(&self, progress: SyncProgress);
}

impl<F: Fn(SyncProgress) + Send + Sync> ProgressListener for F {
    fn on_progress(&self, progress: SyncProgress) {
        self(progress)
    }
}

/// Work moved or left, in cases and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Case transfers.
    pub cases: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Work {
    /// `cases` and `bytes`, from the sizes the sync counts in.
    pub fn new(cases: usize, bytes: usize) -> Work {
        Work {
            cases: u64::try_from(cases).unwrap_or(u64::MAX),
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        }
    }

    /// Both counts added, saturating.
    pub fn plus(self, other: Work) -> Work {
        Work {
            cases: self.cases.saturating_add(other.cases),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// Turns what each round moved and what is known to be left into [`SyncProgress`] events that
/// keep the rules of this module. Pure arithmetic: the sync loop feeds it.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    last: SyncProgress,
}

/// One dimension (cases or bytes): `done` advances by what moved, and to at least what was
/// expected less what is left now (work no longer left is done, moved or not); `expected` is
/// at least what it was and at least done plus what is left.
fn advance(done: u64, expected: u64, moved: u64, left: u64) -> (u64, u64) {
    let done = done
        .saturating_add(moved)
        .max(expected.saturating_sub(left));
    (done, expected.max(done.saturating_add(left)))
}

impl Tracker {
    /// A tracker at zero.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// The event after `moved` was done since the last one, with `left` known to be left.
    pub fn step(&mut self, moved: Work, left: Work) -> SyncProgress {
        let (cases_done, cases_expected) = advance(
            self.last.cases_done,
            self.last.cases_expected,
            moved.cases,
            left.cases,
        );
        let (bytes_done, bytes_expected) = advance(
            self.last.bytes_done,
            self.last.bytes_expected,
            moved.bytes,
            left.bytes,
        );
        self.last = SyncProgress {
            cases_done,
            cases_expected,
            bytes_done,
            bytes_expected,
            finished: false,
        };
        self.last
    }

    /// The last event: `moved` since the last one, nothing left, `done == expected`.
    pub fn finish(&mut self, moved: Work) -> SyncProgress {
        let mut last = self.step(moved, Work::default());
        last.finished = true;
        self.last = last;
        last
    }

    /// The last event made.
    pub fn last(&self) -> SyncProgress {
        self.last
    }
}

/// What the sync thread and the delivery thread share.
#[derive(Default)]
struct Slot {
    /// The newest event not yet delivered.
    latest: Option<SyncProgress>,
    /// No more events will come.
    closed: bool,
}

/// Delivers a sync's events to a listener on a thread of its own, so that the sync never
/// waits for the listener: posting replaces an event not yet delivered with the newer one (a
/// slow listener skips to the latest; order is kept), and a listener that panics gets nothing
/// more.
pub struct Delivery {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    /// Told when the delivery thread is done (every event delivered, or the listener panicked).
    done: mpsc::Receiver<()>,
}

impl Delivery {
    /// Starts the delivery thread for `listener`. If the thread cannot be started, events are
    /// dropped and the sync goes on without them.
    pub fn start(listener: Arc<dyn ProgressListener>) -> Delivery {
        let shared: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let (tell, done) = mpsc::channel();
        let theirs = Arc::clone(&shared);
        let started = std::thread::Builder::new()
            .name("fieldcase-sync-progress".into())
            .spawn(move || {
                deliver(&theirs, listener.as_ref());
                let _ = tell.send(());
            });
        if started.is_err() {
            tracing::warn!("sync progress: no thread for the listener; events dropped");
        }
        Delivery { shared, done }
    }

    /// Hands `progress` over for delivery, replacing an earlier event not yet delivered.
    pub fn post(&self, progress: SyncProgress) {
        let (slot, wake) = &*self.shared;
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.latest = Some(progress);
        wake.notify_one();
    }

    /// No more events: waits at most `wait` for the listener to have been given the last one,
    /// so that an app normally sees the end before the sync call returns, but a listener that
    /// hangs does not hold the sync. The thread delivers what is left after the wait.
    pub fn close(self, wait: Duration) {
        {
            let (slot, wake) = &*self.shared;
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.closed = true;
            wake.notify_one();
        }
        let _ = self.done.recv_timeout(wait);
    }
}

/// The delivery thread: the newest event, each time there is one, until closed and drained.
fn deliver(shared: &(Mutex<Slot>, Condvar), listener: &dyn ProgressListener) {
    let (slot, wake) = shared;
    loop {
        let next = {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            while slot.latest.is_none() && !slot.closed {
                slot = wake.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
            match slot.latest.take() {
                Some(next) => next,
                None => return,
            }
        };
        // The listener is the app's code: a panic (or a foreign exception the bindings turn
        // into one) ends its events, not the sync.
        let called =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener.on_progress(next)));
        if called.is_err() {
            tracing::warn!("sync progress: the listener panicked; no more events for it");
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn work(cases: u64, bytes: u64) -> Work {
        Work { cases, bytes }
    }

    fn check_rules(events: &[SyncProgress]) {
        for pair in events.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                b.cases_done >= a.cases_done && b.bytes_done >= a.bytes_done,
                "{pair:?}"
            );
            assert!(
                b.cases_expected >= a.cases_expected && b.bytes_expected >= a.bytes_expected,
                "{pair:?}"
            );
        }
        for e in events {
            assert!(e.cases_done <= e.cases_expected && e.bytes_done <= e.bytes_expected);
        }
        let last = events.last().unwrap();
        assert!(last.finished);
        assert_eq!(last.cases_done, last.cases_expected);
        assert_eq!(last.bytes_done, last.bytes_expected);
        assert!(events[..events.len() - 1].iter().all(|e| !e.finished));
    }

    #[test]
    fn exact_estimates_are_followed_as_they_are() {
        let mut t = Tracker::new();
        let events = vec![
            t.step(work(0, 0), work(10, 1000)),
            t.step(work(4, 400), work(6, 600)),
            t.step(work(6, 600), work(0, 0)),
            t.finish(work(0, 0)),
        ];
        assert_eq!(events[1].cases_done, 4);
        assert_eq!(events[1].cases_expected, 10);
        assert_eq!(events[2].bytes_done, 1000);
        assert_eq!(events[3].bytes_expected, 1000);
        check_rules(&events);
    }

    #[test]
    fn estimates_too_low_raise_expected_and_too_high_count_as_done_once_not_left() {
        let mut t = Tracker::new();
        // Uploads known, downloads not yet; then the office says 50 cases of 5,000 bytes are
        // left; then it sends less than it estimated; then a case is written meanwhile.
        let events = vec![
            t.step(work(0, 0), work(2, 300)),
            t.step(work(2, 400), work(50, 5000)),
            t.step(work(20, 1000), work(10, 1000)),
            t.step(work(10, 900), work(1, 100)),
            t.finish(work(1, 120)),
        ];
        assert_eq!(events[1].cases_expected, 52);
        // 20 of the 50 were sent, and only 10 are left: the other 20 needed nothing.
        assert_eq!(events[2].cases_done, 42);
        check_rules(&events);
        assert_eq!(events[4].cases_done, 53);
    }

    #[test]
    fn any_sequence_of_estimates_keeps_the_rules() {
        use proptest::prelude::*;
        proptest!(|(steps in proptest::collection::vec(
            (0u64..1000, 0u64..1_000_000, 0u64..1000, 0u64..1_000_000), 0..20),
            last in (0u64..1000, 0u64..1_000_000))| {
            let mut t = Tracker::new();
            let mut events: Vec<SyncProgress> = steps
                .iter()
                .map(|&(mc, mb, lc, lb)| t.step(work(mc, mb), work(lc, lb)))
                .collect();
            events.push(t.finish(work(last.0, last.1)));
            check_rules(&events);
            // Whatever moved is never lost from done.
            let moved: u64 = steps.iter().map(|s| s.0).sum::<u64>() + last.0;
            prop_assert!(events.last().unwrap().cases_done >= moved);
        });
    }

    #[test]
    fn a_slow_listener_holds_nothing_and_gets_the_latest_in_order() {
        let seen: Arc<Mutex<Vec<SyncProgress>>> = Arc::default();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (theirs, their_gate) = (Arc::clone(&seen), Arc::clone(&gate));
        let listener = move |p: SyncProgress| {
            // The first event blocks until the test opens the gate.
            let (open, cv) = &*their_gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            theirs.lock().unwrap().push(p);
        };
        let delivery = Delivery::start(Arc::new(listener));
        let mut t = Tracker::new();
        let started = std::time::Instant::now();
        for i in 0..100 {
            delivery.post(t.step(work(1, 10), work(100 - i, 1000)));
        }
        let last = t.finish(work(0, 0));
        delivery.post(last);
        // Posting never waited for the blocked listener.
        assert!(started.elapsed() < Duration::from_secs(5));
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        delivery.close(Duration::from_secs(30));
        let seen = seen.lock().unwrap();
        assert!(
            seen.len() < 100,
            "a blocked listener was queued every event"
        );
        assert_eq!(*seen.last().unwrap(), last);
        for pair in seen.windows(2) {
            assert!(pair[1].cases_done > pair[0].cases_done || pair[1].finished);
        }
    }

    #[test]
    fn a_listener_that_panics_gets_nothing_more_and_close_returns() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let delivery = Delivery::start(Arc::new(move |_p: SyncProgress| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("the app's listener failed");
        }));
        delivery.post(SyncProgress::default());
        std::thread::sleep(Duration::from_millis(100));
        delivery.post(SyncProgress::default());
        delivery.close(Duration::from_secs(30));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_listener_that_hangs_does_not_hold_close_past_its_wait() {
        let delivery = Delivery::start(Arc::new(|_p: SyncProgress| {
            std::thread::sleep(Duration::from_secs(3));
        }));
        delivery.post(SyncProgress::default());
        let started = std::time::Instant::now();
        delivery.close(Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
