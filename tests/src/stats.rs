//! The figures the benchmarks print: medians of interleaved runs, in ms.

use std::time::Duration;

/// The median of `v` (sorted in place; the mean of the middle two for an
/// even count).
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Milliseconds, for the tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(&mut [ms(4), ms(1), ms(8), ms(2)]), ms(3));
        assert_eq!(super::ms(ms(1500)), 1500.0);
    }
}
