//! Small-cell suppression: no figure of a report below a threshold is shown, and none that is
//! hidden can be worked out from the figures that are.
//!
//! A report is a list of cells (counts) and of the sums that tie them together (a breakdown
//! adds up to its total; the cases open at the end of a period are those open at its start
//! plus the new minus the closed). *Primary* suppression hides every cell below the threshold.
//! A hidden cell could still be recovered by subtraction: a total less every other shown cell
//! of its breakdown. *Secondary* (complementary) suppression hides more cells until no hidden
//! cell is determined by the shown ones through the sums: exactly, over the whole system of
//! sums, not only one breakdown at a time. The check is linear algebra: a hidden cell is
//! determined exactly when it is a pivot of the reduced row echelon form of the sums restricted
//! to the hidden cells whose row has no other hidden cell.
//!
//! Each round hides, in a sum that holds a determined cell, the smallest cell still shown (the
//! least information lost); the rounds end because each hides one more cell.

/// One sum: `Σ coefficient × cell = 0` over the cells it names (a total with `-1`, its parts
/// with `1`).
pub type Relation = Vec<(usize, i64)>;

/// Which cells to hide: every cell below `threshold`, then as few more as keep every hidden
/// cell undetermined by the shown ones through `relations`.
pub fn suppress(values: &[i64], relations: &[Relation], threshold: i64) -> Vec<bool> {
    let mut hidden: Vec<bool> = values.iter().map(|v| *v < threshold).collect();
    loop {
        let determined = determined(values.len(), relations, &hidden);
        let Some(cell) = determined.first() else {
            return hidden;
        };
        // The smallest cell still shown in a sum that holds the determined cell.
        let next = relations
            .iter()
            .filter(|r| r.iter().any(|(c, _)| c == cell))
            .flat_map(|r| r.iter().map(|(c, _)| *c))
            .filter(|c| !hidden[*c])
            .min_by_key(|c| (values[*c], *c));
        match next {
            Some(c) => hidden[c] = true,
            None => {
                // Determined through sums that are all hidden round it: hide the smallest
                // shown cell of any sum that holds a hidden cell (never reached by a report's
                // sums, kept so the loop always ends).
                let any = relations
                    .iter()
                    .filter(|r| r.iter().any(|(c, _)| hidden[*c]))
                    .flat_map(|r| r.iter().map(|(c, _)| *c))
                    .filter(|c| !hidden[*c])
                    .min_by_key(|c| (values[*c], *c));
                match any {
                    Some(c) => hidden[c] = true,
                    None => return hidden,
                }
            }
        }
    }
}

/// The hidden cells whose value the shown cells and `relations` determine.
pub fn determined(cells: usize, relations: &[Relation], hidden: &[bool]) -> Vec<usize> {
    // Columns: the hidden cells only (the shown ones are known constants).
    let columns: Vec<usize> = (0..cells).filter(|c| hidden[*c]).collect();
    let index = |cell: usize| columns.iter().position(|c| *c == cell);
    let mut rows: Vec<Vec<f64>> = relations
        .iter()
        .map(|r| {
            let mut row = vec![0.0; columns.len()];
            for (c, k) in r {
                if let Some(i) = index(*c) {
                    row[i] += *k as f64;
                }
            }
            row
        })
        .filter(|row| row.iter().any(|x| *x != 0.0))
        .collect();
    // Reduced row echelon form, partial pivoting.
    let mut pivots: Vec<(usize, usize)> = Vec::new();
    let mut r = 0;
    for col in 0..columns.len() {
        let Some(best) =
            (r..rows.len()).max_by(|a, b| rows[*a][col].abs().total_cmp(&rows[*b][col].abs()))
        else {
            break;
        };
        if rows[best][col].abs() < 1e-9 {
            continue;
        }
        rows.swap(r, best);
        let p = rows[r][col];
        for x in rows[r].iter_mut() {
            *x /= p;
        }
        let pivot_row = rows[r].clone();
        for (other, row) in rows.iter_mut().enumerate() {
            let f = row[col];
            if other != r && f.abs() > 1e-12 {
                for (x, v) in row.iter_mut().zip(&pivot_row) {
                    *x -= f * v;
                }
            }
        }
        pivots.push((r, col));
        r += 1;
        if r == rows.len() {
            break;
        }
    }
    pivots
        .into_iter()
        .filter(|(row, col)| {
            rows[*row]
                .iter()
                .enumerate()
                .all(|(j, x)| j == *col || x.abs() < 1e-9)
        })
        .map(|(_, col)| columns[col])
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A total (cell 0) and its parts (cells 1..).
    fn breakdown(parts: usize) -> Relation {
        let mut r = vec![(0, -1)];
        r.extend((1..=parts).map(|i| (i, 1)));
        r
    }

    #[test]
    fn one_small_part_takes_a_second_with_it() {
        // 30 = 20 + 7 + 3: the 3 is hidden, and so is the 7, else 30 - 20 - 7 gives it.
        let hidden = suppress(&[30, 20, 7, 3], &[breakdown(3)], 5);
        assert_eq!(hidden, [false, false, true, true]);
    }

    #[test]
    fn nothing_hidden_when_nothing_is_small() {
        let hidden = suppress(&[30, 20, 10], &[breakdown(2)], 5);
        assert_eq!(hidden, [false, false, false]);
    }

    #[test]
    fn two_breakdowns_of_one_total_cannot_give_it_back() {
        // Total 12 hidden by neither rule alone; gender 8 + 4, age 6 + 6. The 4 is hidden,
        // then the 8; the total is then recoverable from age alone, so age is hidden too
        // or the total is: either way nothing hidden is determined.
        let rel = vec![vec![(0, -1), (1, 1), (2, 1)], vec![(0, -1), (3, 1), (4, 1)]];
        let values = [12, 8, 4, 6, 6];
        let hidden = suppress(&values, &rel, 5);
        assert!(hidden[2] && hidden[1]);
        assert!(determined(5, &rel, &hidden).is_empty());
    }

    /// Whether a hidden cell can be found by subtraction: every sum with exactly one hidden
    /// cell gives it away (an independent, simple check beside the exact one).
    fn one_hidden_in_a_sum(rel: &[Relation], hidden: &[bool]) -> bool {
        rel.iter()
            .any(|r| r.iter().filter(|(c, _)| hidden[*c]).count() == 1)
    }

    /// Exact check by brute force over small values: is there another assignment of the
    /// hidden cells, agreeing with every sum and with the shown cells, that changes a given
    /// hidden cell? Solves for the hidden cells with integer steps over a null vector.
    fn has_other_solution(values: &[i64], rel: &[Relation], hidden: &[bool], cell: usize) -> bool {
        // Move `cell` by +1 and look for a compensation among the other hidden cells in
        // each sum, by a small depth-first search of ±1 moves (enough for ±1 coefficients).
        let hidden_cells: Vec<usize> = (0..values.len()).filter(|c| hidden[*c]).collect();
        let n = hidden_cells.len();
        // Try every vector of −1, 0, 1 over the hidden cells (n is small in the test).
        if n > 12 {
            return true;
        }
        let total = 3usize.pow(n as u32);
        for code in 0..total {
            let mut delta = vec![0i64; values.len()];
            let mut c = code;
            for h in &hidden_cells {
                delta[*h] = (c % 3) as i64 - 1;
                c /= 3;
            }
            if delta[cell] == 0 {
                continue;
            }
            if rel
                .iter()
                .all(|r| r.iter().map(|(c, k)| k * delta[*c]).sum::<i64>() == 0)
            {
                return true;
            }
        }
        false
    }

    /// A random report-like table: a grand total with `k` breakdowns of it, each of a few
    /// parts; part values random, small ones likely.
    fn table() -> impl Strategy<Value = (Vec<i64>, Vec<Relation>)> {
        prop::collection::vec(prop::collection::vec(0i64..12, 2..4), 1..4).prop_map(|breakdowns| {
            // Every breakdown must add up to the same total: scale the last part.
            let target: i64 = breakdowns[0].iter().sum();
            let mut values = vec![target];
            let mut rel = Vec::new();
            for parts in breakdowns {
                let mut parts = parts;
                let sum: i64 = parts.iter().sum();
                let last = parts.len() - 1;
                parts[last] += target - sum;
                if parts[last] < 0 {
                    // Give the excess to the first part instead.
                    let excess = -parts[last];
                    parts[last] = 0;
                    parts[0] -= excess;
                    if parts[0] < 0 {
                        parts = vec![0; parts.len()];
                        parts[0] = target;
                    }
                }
                let mut r = vec![(0, -1)];
                for p in parts {
                    r.push((values.len(), 1));
                    values.push(p);
                }
                rel.push(r);
            }
            (values, rel)
        })
    }

    proptest! {
        #[test]
        fn no_hidden_cell_is_recoverable((values, rel) in table(), threshold in 1i64..8) {
            for r in &rel {
                prop_assert_eq!(r.iter().map(|(c, k)| k * values[*c]).sum::<i64>(), 0);
            }
            let hidden = suppress(&values, &rel, threshold);
            // Every small cell hidden.
            for (c, v) in values.iter().enumerate() {
                if *v < threshold {
                    prop_assert!(hidden[c]);
                }
            }
            // No sum with exactly one hidden cell.
            prop_assert!(!one_hidden_in_a_sum(&rel, &hidden));
            // And no hidden cell fixed by the sums together: each can move.
            prop_assert!(determined(values.len(), &rel, &hidden).is_empty());
            for c in 0..values.len() {
                if hidden[c] {
                    prop_assert!(has_other_solution(&values, &rel, &hidden, c), "cell {} fixed", c);
                }
            }
        }
    }
}
