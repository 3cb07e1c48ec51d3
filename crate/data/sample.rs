//! Which tiles a limited fetch takes and how a session splits them: seeded, and balanced by
//! class where there are classes. A tile's place comes from the seed and its name alone, so the
//! sample and the split do not depend on the order tiles arrive in: random access and a stream,
//! the CLI and the page, draw the same.

use std::collections::BTreeMap;

/// A tile's place in the seeded order: FNV-1a of its name, mixed with the seed (splitmix64).
pub fn priority(seed: u64, name: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in name.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = hash ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sorts `items` into the seeded order of their names (ties, which a 64-bit hash makes rare, by
/// name).
pub fn sort_seeded<T>(seed: u64, items: &mut [T], name: impl Fn(&T) -> String) {
    items.sort_by_cached_key(|item| {
        let name = name(item);
        (priority(seed, &name), name)
    });
}

/// Names in the seeded order.
pub fn shuffled<'a>(seed: u64, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.into_iter().collect();
    sort_seeded(seed, &mut names, |n| n.to_string());
    names
}

/// Up to `limit` of `names`, the first in the seeded order.
pub fn uniform<'a>(
    seed: u64,
    names: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Vec<&'a str> {
    let mut chosen = shuffled(seed, names);
    chosen.truncate(limit);
    chosen
}

/// Up to `limit` of the (name, class) pairs, balanced by class: the classes take turns (in the
/// order of their names), each giving its next tile in the seeded order, until `limit` are taken
/// or every class is spent. A class with fewer tiles than its share gives them all.
pub fn balanced(seed: u64, tiles: &[(String, String)], limit: usize) -> Vec<&str> {
    let mut by_class: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, class) in tiles {
        by_class.entry(class).or_default().push(name);
    }
    let mut queues: Vec<std::vec::IntoIter<&str>> = by_class
        .into_values()
        .map(|names| shuffled(seed, names).into_iter())
        .collect();
    let mut chosen = Vec::new();
    while chosen.len() < limit {
        let before = chosen.len();
        for queue in &mut queues {
            if chosen.len() == limit {
                break;
            }
            chosen.extend(queue.next());
        }
        if chosen.len() == before {
            break;
        }
    }
    chosen
}

/// A balanced sample ([`balanced`]) and how it came out, for the user: `of` names what it was
/// drawn from (e.g. "labelled tiles").
pub fn balanced_described(
    seed: u64,
    tiles: &[(String, String)],
    limit: usize,
    of: &str,
) -> (std::collections::HashSet<String>, String) {
    let chosen = balanced(seed, tiles, limit);
    let how = format!(
        "a class-balanced sample (seed {seed}) of {} of {} {of}: {}",
        chosen.len(),
        tiles.len(),
        describe_balanced(tiles, &chosen)
    );
    (chosen.into_iter().map(String::from).collect(), how)
}

/// How a balanced sample came out, for the user: per class, taken of available.
pub fn describe_balanced(tiles: &[(String, String)], chosen: &[&str]) -> String {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (name, class) in tiles {
        let entry = counts.entry(class).or_default();
        entry.1 += 1;
        entry.0 += usize::from(chosen.contains(&name.as_str()));
    }
    counts
        .iter()
        .map(|(class, (taken, of))| format!("{class} {taken}/{of}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A training and a validation part of tiles with optional classes, stratified by class: within
/// each class, in the seeded order, the first 3/4 (rounded up) train and the rest validate; at
/// least one tile validates when there are two or more. Both parts come back in the tiles' order.
pub fn split(seed: u64, tiles: &[(&str, Option<usize>)]) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
    for (i, (_, class)) in tiles.iter().enumerate() {
        by_class.entry(*class).or_default().push(i);
    }
    let mut validate = vec![false; tiles.len()];
    let mut last_trained: Vec<(usize, usize)> = Vec::new(); // (class size, index)
    for members in by_class.values_mut() {
        sort_seeded(seed, members, |&i| tiles[i].0.to_string());
        let keep = (members.len() * 3).div_ceil(4);
        for &i in &members[keep..] {
            validate[i] = true;
        }
        last_trained.push((members.len(), members[keep - 1]));
    }
    if tiles.len() >= 2 && !validate.contains(&true) {
        // every class too small to give one: the largest gives its last
        let (_, i) = last_trained
            .iter()
            .max_by_key(|(n, _)| *n)
            .copied()
            .unwrap_or((0, 0));
        validate[i] = true;
    }
    (0..tiles.len()).partition(|&i| !validate[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(classes: &[(&str, usize)]) -> Vec<(String, String)> {
        classes
            .iter()
            .flat_map(|(c, n)| (0..*n).map(move |i| (format!("{c}_{i:03}.tiff"), c.to_string())))
            .collect()
    }

    #[test]
    fn balanced_takes_turns_and_a_small_class_gives_all_it_has() {
        let all = tiles(&[("BAS", 2), ("LYT", 50), ("MON", 30)]);
        let chosen = balanced(7, &all, 20);
        assert_eq!(chosen.len(), 20);
        let count = |c: &str| chosen.iter().filter(|n| n.starts_with(c)).count();
        assert_eq!((count("BAS"), count("LYT"), count("MON")), (2, 9, 9));
        assert_eq!(
            describe_balanced(&all, &chosen),
            "BAS 2/2, LYT 9/50, MON 9/30"
        );
        // the same whatever order the tiles came in, another with another seed
        let mut reversed = all.clone();
        reversed.reverse();
        let mut a = chosen.clone();
        let mut b = balanced(7, &reversed, 20);
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let mut c = balanced(8, &all, 20);
        c.sort();
        assert_ne!(a, c);
        assert_eq!(balanced(7, &all, 500).len(), 82);
    }

    #[test]
    fn uniform_takes_the_first_in_the_seeded_order() {
        let names: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let a = uniform(3, names.iter().map(String::as_str), 10);
        let b = uniform(3, names.iter().rev().map(String::as_str), 10);
        assert_eq!(a, b);
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn split_is_stratified_seeded_and_keeps_both_parts() {
        let names: Vec<String> = (0..40).map(|i| format!("t{i:02}")).collect();
        // 30 of class 0, then 10 of class 1: arrival order by class
        let tiles: Vec<(&str, Option<usize>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), Some(usize::from(i >= 30))))
            .collect();
        let (train, val) = split(0, &tiles);
        assert_eq!((train.len(), val.len()), (31, 9));
        let val_of = |c| val.iter().filter(|&&i| tiles[i].1 == Some(c)).count();
        assert_eq!((val_of(0), val_of(1)), (7, 2));
        assert_ne!(split(1, &tiles).1, val);
        let two = [("a", None), ("b", None)];
        assert_eq!(split(0, &two).0.len(), 1);
        let singles = [("a", Some(0)), ("b", Some(1)), ("c", Some(2))];
        assert_eq!(split(0, &singles).1.len(), 1);
    }
}
