//! A small bounded queue between tasks, for the channels every session has: its
//! commands from the supervisor and its UPDATE batches from the rib task.
//!
//! A tokio `mpsc` channel costs about 800 bytes from the moment it is made (its shared
//! state is padded to cache lines, and it allocates a block of 32 slots up front),
//! and a route reflector has two of them per client, mostly empty (issue 18's memory
//! per session). This one is an `Arc` of a mutex-guarded `VecDeque`, the receiver's
//! waker and a `Notify` for senders waiting for room, about 200 bytes, and its
//! `VecDeque` holds memory only while something is queued. Receiving is a poll, so
//! the session task's future holds no waiting state for it.
//!
//! What it keeps of `mpsc`'s contract: a fixed capacity; `send` waits for room;
//! `try_send` and [`Sender::try_reserve`] never wait; a reserved slot is kept until
//! its [`Permit`] sends or is dropped; `recv` is cancel-safe and returns `None` once
//! every sender and permit is gone and nothing is queued; sends fail once the
//! receiver is gone. The mutex is held for a push or a pop only, never across an
//! await.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::sync::Notify;

/// Makes a queue of `capacity` items (at least one).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            reserved: 0,
            senders: 1,
            receiver: true,
        }),
        to_receiver: AtomicWaker::new(),
        room: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending end; clones send into the same queue.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A slot reserved by [`Sender::try_reserve`]: [`Permit::send`] fills it without
/// waiting; dropping the permit gives it back.
pub struct Permit<T> {
    shared: Option<Arc<Shared<T>>>,
}

/// Why [`Sender::try_send`] or [`Sender::try_reserve`] did not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No room now.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// [`Sender::send`] failed: the receiver is gone. Holds what was not sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<T>(pub T);

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The receiver's task, woken by an item or the last sender's end.
    to_receiver: AtomicWaker,
    /// Senders wait on it for room or the receiver's end.
    room: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// Slots held by permits.
    reserved: usize,
    senders: usize,
    receiver: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held (pushes, pops and counts).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> State<T> {
    fn full(&self) -> bool {
        self.items.len() + self.reserved >= self.capacity
    }

    /// Takes the next item, giving the queue's memory back once it is empty.
    fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        if self.items.is_empty() {
            self.items = VecDeque::new();
        }
        Some(item)
    }
}

impl<T> Sender<T> {
    /// Queues `value`, waiting for room.
    pub async fn send(&self, value: T) -> Result<(), Closed<T>> {
        let mut value = value;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before looking: room made after the look wakes this wait.
            room.as_mut().enable();
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(Closed(back)),
                Err(TrySendError::Full(back)) => value = back,
            }
            room.await;
        }
    }

    /// Queues `value` if there is room now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.lock();
            if !state.receiver {
                return Err(TrySendError::Closed(value));
            }
            if state.full() {
                return Err(TrySendError::Full(value));
            }
            state.items.push_back(value);
        }
        self.shared.to_receiver.wake();
        Ok(())
    }

    /// Reserves a slot if there is room now.
    pub fn try_reserve(&self) -> Result<Permit<T>, TrySendError<()>> {
        let mut state = self.shared.lock();
        if !state.receiver {
            return Err(TrySendError::Closed(()));
        }
        if state.full() {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit {
            shared: Some(self.shared.clone()),
        })
    }

    /// True once the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.to_receiver.wake();
        }
    }
}

impl<T> Permit<T> {
    /// Fills the reserved slot (dropped if the receiver is gone).
    pub fn send(mut self, value: T) {
        if let Some(shared) = self.shared.take() {
            {
                let mut state = shared.lock();
                state.reserved -= 1;
                if !state.receiver {
                    return;
                }
                state.items.push_back(value);
            }
            shared.to_receiver.wake();
        }
    }
}

impl<T> Drop for Permit<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.lock().reserved -= 1;
            shared.room.notify_waiters();
            // The receiver may be waiting for this permit's end to end itself.
            shared.to_receiver.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once nothing is queued and every sender
    /// and permit is gone. Cancel-safe.
    pub fn recv(&mut self) -> impl Future<Output = Option<T>> + '_ {
        // A poll function, not an async fn: the future is the receiver's address.
        std::future::poll_fn(|context| self.poll_recv(context))
    }

    /// [`Receiver::recv`] as a poll.
    pub fn poll_recv(&mut self, context: &mut Context<'_>) -> Poll<Option<T>> {
        for attempt in 0..2 {
            match self.try_recv() {
                Ok(item) => return Poll::Ready(Some(item)),
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                // Registered, then looked at again: an item pushed in between wakes.
                Err(TryRecvError::Empty) if attempt == 0 => {
                    self.shared.to_receiver.register(context.waker());
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        Poll::Pending
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let item = {
            let mut state = self.shared.lock();
            match state.pop() {
                Some(item) => item,
                None if state.senders == 0 && state.reserved == 0 => {
                    return Err(TryRecvError::Disconnected);
                }
                None => return Err(TryRecvError::Empty),
            }
        };
        self.shared.room.notify_waiters();
        Ok(item)
    }

    /// The room free now (capacity less queued and reserved items).
    pub fn capacity(&self) -> usize {
        let state = self.shared.lock();
        state.capacity - (state.items.len() + state.reserved).min(state.capacity)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.receiver = false;
            std::mem::take(&mut state.items)
        };
        // Dropped outside the lock.
        drop(items);
        self.shared.room.notify_waiters();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Permit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_queue_costs_a_few_hundred_bytes() {
        // The shared state one allocation holds (plus the Arc's counts).
        assert!(std::mem::size_of::<Shared<Box<u64>>>() <= 240);
        let (sender, mut receiver) = channel::<Box<u64>>(16);
        sender.try_send(Box::new(1)).unwrap();
        assert_eq!(*receiver.try_recv().unwrap(), 1);
        // Emptied: the items' room is given back.
        assert_eq!(sender.shared.lock().items.capacity(), 0);
        // Waiting to receive holds nothing but the receiver's address in the
        // waiting task's future (a session task waits on two of these).
        assert!(std::mem::size_of_val(&receiver.recv()) <= 16);
    }

    #[tokio::test]
    async fn bounded_in_order_and_closed_by_either_end() {
        let (sender, mut receiver) = channel(2);
        sender.try_send(1).unwrap();
        sender.send(2).await.unwrap();
        assert_eq!(sender.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(receiver.capacity(), 0);
        // A send waiting for room completes once an item is taken.
        let other = sender.clone();
        let waiting = tokio::spawn(async move { other.send(3).await });
        tokio::task::yield_now().await;
        assert_eq!(receiver.recv().await, Some(1));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(receiver.recv().await, Some(2));
        assert_eq!(receiver.recv().await, Some(3));
        assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
        assert!(receiver.recv().now_or_never().is_none());
        drop(sender);
        assert_eq!(receiver.recv().await, None);

        let (sender, receiver) = channel(1);
        sender.try_send(1).unwrap();
        let blocked = sender.clone();
        let waiting = tokio::spawn(async move { blocked.send(2).await });
        tokio::task::yield_now().await;
        drop(receiver);
        assert!(sender.is_closed());
        let result = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result, Err(Closed(2)));
        assert_eq!(sender.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn a_permit_holds_its_slot_until_it_sends_or_goes() {
        let (sender, mut receiver) = channel(1);
        let permit = sender.try_reserve().unwrap();
        assert!(matches!(sender.try_reserve(), Err(TrySendError::Full(()))));
        assert_eq!(sender.try_send(1), Err(TrySendError::Full(1)));
        drop(permit);
        assert_eq!(receiver.capacity(), 1);
        let permit = sender.try_reserve().unwrap();
        // The channel stays open for the permit after the last sender is gone.
        drop(sender);
        assert!(receiver.recv().now_or_never().is_none());
        permit.send(7);
        assert_eq!(receiver.recv().await, Some(7));
        assert_eq!(receiver.recv().await, None);
    }
}
