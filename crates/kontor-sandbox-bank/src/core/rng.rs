//! A tiny deterministic random generator, so that a seed gives the same bank data on every
//! machine and every version of our dependencies (`rand`'s generators may change between
//! releases; SplitMix64 never does).

/// Hashes text into 64 bits (FNV-1a, then mixed), to derive per-user, per-day seeds.
pub fn hash_str(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix(hash)
}

/// Combines two 64-bit values into a well-spread third.
pub fn combine(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast, and fully specified.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A value in `lo..=hi` (modulo bias is irrelevant at these ranges).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo).saturating_add(1);
        let offset = self.next_u64() % span;
        lo.saturating_add_unsigned(offset)
    }

    /// A value in `0..len`.
    pub fn index(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % len64).unwrap_or(0)
    }

    /// True with the given chance in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// Picks an index with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return 0;
        }
        let mut ticket = self.next_u64() % total;
        for (i, w) in weights.iter().enumerate() {
            let w = u64::from(*w);
            if ticket < w {
                return i;
            }
            ticket -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// Sixteen lower-case hex digits, for identifiers.
    pub fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.range(-5, 5);
            assert_eq!(x, b.range(-5, 5));
            assert!((-5..=5).contains(&x));
        }
        assert_eq!(Rng::new(1).next_u64(), 0x910a_2dec_8902_5cc1);
    }
}
