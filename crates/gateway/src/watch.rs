//! Coarse per-worker timers and the drain signal for the fast path (nginx
//! keeps one timer tree per worker for the same reason): a connection arms
//! its [`Slot`] with a deadline by writing two cells, and one ticker task
//! per worker wakes the slots whose deadline passed. A request then costs no
//! timer-wheel entry, no clock read and no cancellation-token lock: slots
//! count from the ticker's last reading of the clock, so deadlines fire
//! between their time and [`TICK`] × 2 after it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// How often deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// One worker's slots.
pub struct Watch {
    slots: RefCell<Vec<Weak<Slot>>>,
    draining: Cell<bool>,
    /// The clock as the ticker last read it.
    now: Rc<Cell<Instant>>,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            slots: RefCell::default(),
            draining: Cell::new(false),
            now: Rc::new(Cell::new(Instant::now())),
        }
    }
}

/// One connection's deadline.
pub struct Slot {
    now: Rc<Cell<Instant>>,
    deadline: Cell<Option<Instant>>,
    /// Fires on drain too (the connection waits for a new request).
    idle: Cell<bool>,
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Watch {
    /// A new slot, checked until dropped.
    pub fn slot(&self) -> Rc<Slot> {
        let slot = Rc::new(Slot {
            now: self.now.clone(),
            deadline: Cell::new(None),
            idle: Cell::new(false),
            fired: Cell::new(false),
            waker: RefCell::new(None),
        });
        self.slots.borrow_mut().push(Rc::downgrade(&slot));
        slot
    }

    /// Whether the worker is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts the drain: idle connections are woken to close.
    pub fn drain(&self) {
        self.draining.set(true);
        self.check(Instant::now());
    }

    /// Wakes every slot whose deadline passed (or that is idle while
    /// draining), and forgets dropped ones.
    pub fn check(&self, now: Instant) {
        self.now.set(now);
        let draining = self.draining.get();
        let mut due = Vec::new();
        self.slots.borrow_mut().retain(|weak| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            let late = slot.deadline.get().is_some_and(|d| d <= now);
            if late || (draining && slot.idle.get()) {
                slot.fired.set(true);
                due.extend(slot.waker.borrow_mut().take());
            }
            true
        });
        // Woken outside the borrow: a woken task may add a slot.
        due.into_iter().for_each(Waker::wake);
    }

    /// Checks the slots every [`TICK`] until the worker stops.
    pub async fn run(self: Rc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = tick.tick().await;
            self.check(now);
        }
    }
}

impl Slot {
    /// Arms the slot: [`Slot::expired`] completes after `within` (counted
    /// from the last tick), or (when `idle`) as soon as the worker drains.
    pub fn arm(&self, within: Duration, idle: bool) {
        // One tick more: the last tick may be almost a tick ago.
        self.deadline.set(self.now.get().checked_add(within + TICK));
        self.idle.set(idle);
        self.fired.set(false);
    }

    /// Disarms the slot.
    pub fn disarm(&self) {
        self.deadline.set(None);
        self.idle.set(false);
        self.fired.set(false);
    }

    /// Completes when the armed deadline passes (or the drain starts).
    pub fn expired(&self) -> Expired<'_> {
        Expired { slot: self }
    }
}

/// See [`Slot::expired`].
pub struct Expired<'a> {
    slot: &'a Slot,
}

impl Future for Expired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let slot = self.slot;
        if slot.fired.get() {
            return Poll::Ready(());
        }
        let mut waker = slot.waker.borrow_mut();
        match waker.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_and_drain_wake_their_slots() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let watch = Rc::new(Watch::default());
                tokio::task::spawn_local(watch.clone().run());
                let slot = watch.slot();
                slot.arm(Duration::from_millis(250), false);
                let started = Instant::now();
                slot.expired().await;
                let waited = started.elapsed();
                assert!(
                    waited >= Duration::from_millis(250)
                        && waited <= Duration::from_millis(250) + TICK * 2,
                    "{waited:?}"
                );

                let idle = watch.slot();
                idle.arm(Duration::from_secs(3600), true);
                let busy = watch.slot();
                busy.arm(Duration::from_secs(3600), false);
                watch.drain();
                assert!(watch.draining());
                tokio::time::timeout(Duration::from_millis(1), idle.expired())
                    .await
                    .expect("an idle slot fires on drain");
                assert!(!busy.fired.get(), "a busy one does not");
                drop((slot, idle, busy));
                watch.check(Instant::now());
                assert!(
                    watch.slots.borrow().is_empty(),
                    "dropped slots are forgotten"
                );
            })
            .await;
    }
}
