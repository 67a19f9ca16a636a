//! Small helpers shared by several modules.

/// Serde adapter that writes bytes as standard base64 text (for JSON files).
pub(crate) mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Most threads [`map_side_by_side`] uses: beyond that, the work of one request or one sync
/// round is too small to share.
pub(crate) const MAX_THREADS: usize = 4;

/// `f` of every item, in order, computed side by side on up to as many threads as the machine
/// has (at most [`MAX_THREADS`]; on the calling thread alone when that is one, or there are
/// fewer than two items). For CPU work on independent items, such as loading the automerge
/// documents of a sync round, each some milliseconds.
///
/// Should a worker panic, the items it took are computed again on the calling thread, where
/// the panic happens as it would have without threads.
pub(crate) fn map_side_by_side<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(items.len());
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return out;
                        };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in done {
        slots[i] = Some(r);
    }
    items
        .iter()
        .zip(slots)
        .map(|(item, slot)| slot.unwrap_or_else(|| f(item)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::map_side_by_side;

    #[test]
    fn side_by_side_keeps_the_order_of_the_items() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map_side_by_side(&items, |i| {
            // Uneven work, so that the threads finish out of order.
            std::thread::sleep(std::time::Duration::from_micros(i % 7 * 50));
            i * i
        });
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(map_side_by_side(&[] as &[u64], |i| *i), Vec::<u64>::new());
    }
}
