//! A reference classifier to read accuracies against: the nearest class mean on raw pixels
//! (each test image takes the class whose mean training image is closest in Euclidean
//! distance; ties go to the lower class). No parameters, no randomness, one pass over each
//! split, so a run can print it beside its own held-out accuracy.

use super::ImageSet;

/// Accuracy of the nearest-class-mean classifier fitted on `train` and scored on `test`, over
/// `classes` classes (labels at or above it are ignored when fitting). `None` when `test` is
/// empty or the image sizes differ.
pub fn nearest_class_mean(train: &ImageSet, test: &ImageSet, classes: usize) -> Option<f64> {
    let pixels = train.pixels();
    if test.is_empty() || test.pixels() != pixels || classes == 0 {
        return None;
    }
    let mut sums = vec![0.0f64; classes * pixels];
    let mut counts = vec![0usize; classes];
    for i in 0..train.len() {
        let c = train.label(i) as usize;
        if c >= classes {
            continue;
        }
        counts[c] += 1;
        for (s, &p) in sums[c * pixels..(c + 1) * pixels]
            .iter_mut()
            .zip(train.image(i))
        {
            *s += f64::from(p);
        }
    }
    for (c, &n) in counts.iter().enumerate() {
        if n > 0 {
            for s in &mut sums[c * pixels..(c + 1) * pixels] {
                *s /= n as f64;
            }
        }
    }
    let mut correct = 0usize;
    for i in 0..test.len() {
        let image = test.image(i);
        let mut best = (f64::INFINITY, 0usize);
        for c in (0..classes).filter(|&c| counts[c] > 0) {
            let mean = &sums[c * pixels..(c + 1) * pixels];
            let d: f64 = mean
                .iter()
                .zip(image)
                .map(|(m, &p)| (m - f64::from(p)).powi(2))
                .sum();
            if d < best.0 {
                best = (d, c);
            }
        }
        correct += usize::from(best.1 == test.label(i) as usize);
    }
    Some(correct as f64 / test.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: &[[u8; 2]], labels: &[u8]) -> ImageSet {
        ImageSet {
            rows: 1,
            cols: 2,
            images: images.iter().flatten().copied().collect(),
            labels: labels.to_vec(),
        }
    }

    #[test]
    fn nearest_class_mean_by_hand() {
        // Class means: 0 -> (0, 10), 1 -> (10, 0).
        let train = set(&[[0, 8], [0, 12], [9, 0], [11, 0]], &[0, 0, 1, 1]);
        // (1, 9) is nearer class 0, (7, 2) nearer class 1, (6, 4): d0 = 36 + 36 = 72,
        // d1 = 16 + 16 = 32, so class 1, which the label (0) makes wrong.
        let test = set(&[[1, 9], [7, 2], [6, 4]], &[0, 1, 0]);
        let acc = nearest_class_mean(&train, &test, 2).unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 1e-12, "{acc}");
        // A class with no training image is never predicted; an empty test split has no score.
        let acc = nearest_class_mean(&train, &test, 3).unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 1e-12, "{acc}");
        assert_eq!(nearest_class_mean(&train, &set(&[], &[]), 2), None);
    }
}
