//! Spreading one pass's per-job work over a few scoped threads.

/// `f(i, &items[i])` for every item, on up to `threads` threads (the calling one
/// included), keeping the `Some` results in item order.
pub(crate) fn filter_map_on<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &T) -> Option<R> + Sync,
{
    let f = &f;
    let serial = move |part: &[T], first: usize| -> Vec<R> {
        part.iter()
            .enumerate()
            .filter_map(|(i, item)| f(first + i, item))
            .collect()
    };
    if threads < 2 || items.len() < 2 {
        return serial(items, 0);
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut parts = items.chunks(per).enumerate();
        let (_, head) = parts.next().expect("items is not empty");
        let handles: Vec<_> = parts
            .map(|(k, part)| scope.spawn(move || serial(part, k * per)))
            .collect();
        let mut out = serial(head, 0);
        for h in handles {
            out.extend(h.join().expect("poll thread panicked"));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::filter_map_on;

    #[test]
    fn same_answer_on_any_number_of_threads() {
        let items: Vec<u32> = (0..1001).collect();
        let odd = |i: usize, v: &u32| (v % 2 == 1).then_some((i, v * 10));
        let one = filter_map_on(&items, 1, odd);
        assert_eq!(one.len(), 500);
        assert_eq!(one[0], (1, 10));
        for threads in [2, 3, 8] {
            assert_eq!(filter_map_on(&items, threads, odd), one);
        }
        assert!(filter_map_on(&[] as &[u32], 4, odd).is_empty());
    }
}
