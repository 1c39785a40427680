//! The project's one definition of a mean and a spread. Every spread autoarch shows — a
//! candidate's over its seeds (the archive's summaries, `show`, `report`, the dashboard) and
//! the benchmark's — is the sample standard deviation, with n − 1 in the denominator.

/// The mean; NaN for no values.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation (n − 1); 0 for fewer than two values.
pub fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd_by_hand() {
        assert!(mean(&[]).is_nan());
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        // Squares of the deviations: 4 + 1 + 9 = 14, over n − 1 = 2.
        assert!((sd(&[1.0, 2.0, 6.0]) - 7f64.sqrt()).abs() < 1e-12);
        assert_eq!(sd(&[5.0]), 0.0);
        assert_eq!(sd(&[]), 0.0);
    }
}
