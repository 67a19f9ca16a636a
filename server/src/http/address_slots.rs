//! Request slots per client address: each address may have at most a set number of requests
//! in flight (more wait their turn, within the request timeout), so that one address — one
//! slow or hostile client, however many connections it opens — can hold only its share of the
//! server's slots, and phones and case managers elsewhere keep theirs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots of every address with a request in flight.
#[derive(Debug)]
pub(crate) struct AddressSlots {
    per_address: usize,
    open: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// A request's slot for its address; frees it (and forgets an address with nothing in flight)
/// when dropped.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    slots: Arc<AddressSlots>,
    address: IpAddr,
    permit: Option<OwnedSemaphorePermit>,
}

impl AddressSlots {
    /// `per_address` requests in flight from one address at most.
    pub(crate) fn new(per_address: usize) -> Arc<AddressSlots> {
        Arc::new(AddressSlots {
            per_address: per_address.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a slot of `address`.
    pub(crate) async fn acquire(self: &Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        let semaphore = {
            let mut open = self.open.lock().ok()?;
            open.entry(address)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_address)))
                .clone()
        };
        let permit = semaphore.acquire_owned().await.ok()?;
        Some(AddressSlot {
            slots: self.clone(),
            address,
            permit: Some(permit),
        })
    }

    /// Addresses with a request in flight or waiting (for tests and metrics).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().map(|o| o.len()).unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        if let Ok(mut open) = self.slots.open.lock()
            && let Some(semaphore) = open.get(&self.address)
            // Nobody else holds or waits for it: the map's own reference is the last one.
            && Arc::strong_count(semaphore) == 1
            && semaphore.available_permits() == self.slots.per_address
        {
            open.remove(&self.address);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn one_address_waits_for_its_own_slots_and_others_do_not() {
        let slots = AddressSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.acquire(a).await.unwrap();
        let _second = slots.acquire(a).await.unwrap();
        // A third from the same address waits...
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire(a));
        assert!(waiting.await.is_err());
        // ...while another address goes straight through.
        let other = slots.acquire(b).await.unwrap();
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), slots.acquire(a));
        assert!(third.await.unwrap().is_some());
        drop(other);
        // An address with nothing in flight is forgotten.
        assert_eq!(slots.addresses(), 1);
    }
}
