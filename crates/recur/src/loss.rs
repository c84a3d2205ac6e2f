//! Cross entropy exactly as `torch.nn.functional.cross_entropy` with `reduction="mean"`,
//! `ignore_index` and `label_smoothing`, fused with its gradient.

use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// Mean cross entropy of `logits` `[rows, classes]` against class ids `targets` `[rows]`.
///
/// Returns the loss and its gradient with respect to `logits` (`[rows, classes]`).
/// Rows whose target equals `ignore_index` contribute nothing and are not counted in the mean.
/// With label smoothing `eps` (PyTorch's definition) the loss is
/// `(1 - eps) * mean(nll) + eps * mean(-sum_c logp_c / classes)`, both means over kept rows.
/// Unlike PyTorch (which returns NaN), all rows ignored gives loss 0 and zero gradient.
pub fn cross_entropy(
    logits: &[f32],
    rows: usize,
    classes: usize,
    targets: &[i64],
    ignore_index: Option<i64>,
    label_smoothing: f32,
) -> Result<(f32, Vec<f32>)> {
    let op = "cross_entropy";
    if logits.len() != rows * classes {
        return Err(Error::shape(
            op,
            format!("logits of {rows} x {classes} = {} values", rows * classes),
            format!("{} values", logits.len()),
        ));
    }
    if targets.len() != rows {
        return Err(Error::shape(
            op,
            format!("{rows} targets"),
            format!("{} targets", targets.len()),
        ));
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::arg(
            op,
            "label_smoothing",
            "a value in [0, 1]",
            label_smoothing,
        ));
    }
    // Validate all targets before computing anything.
    let mut kept = 0usize;
    for &t in targets {
        if Some(t) == ignore_index {
            continue;
        }
        if t < 0 || t as u64 >= classes as u64 {
            return Err(Error::IndexOutOfRange {
                op,
                index: t,
                size: classes,
            });
        }
        kept += 1;
    }
    let mut grad = vec![0.0f32; rows * classes];
    if kept == 0 {
        return Ok((0.0, grad));
    }
    let eps = label_smoothing as f64;
    let inv_n = 1.0 / kept as f64;
    let smooth_per_class = eps / classes as f64;
    // Accumulate the scalar loss in f64: it sums many rows.
    let (mut nll_sum, mut smooth_sum) = (0.0f64, 0.0f64);
    for ((z, g), &t) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(targets)
    {
        if Some(t) == ignore_index {
            continue;
        }
        let t = t as usize;
        // Stable log-softmax: logp = z - max - log(sum exp(z - max)).
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum_exp: f64 = z.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let lse = max as f64 + sum_exp.ln();
        nll_sum += lse - z[t] as f64;
        if eps > 0.0 {
            smooth_sum += z.iter().map(|&v| lse - v as f64).sum::<f64>();
        }
        // d/dz_j = softmax_j - (1 - eps) [j = t] - eps / classes, over kept rows.
        for (j, (gj, &zj)) in g.iter_mut().zip(z).enumerate() {
            let p = (zj as f64 - lse).exp();
            let target = if j == t { 1.0 - eps } else { 0.0 };
            *gj = ((p - target - smooth_per_class) * inv_n) as f32;
        }
    }
    let loss = (1.0 - eps) * nll_sum * inv_n + smooth_per_class * smooth_sum * inv_n;
    Ok((loss as f32, grad))
}

/// [`cross_entropy`] on a tensor: `logits` `(..., classes)`, `targets` one per leading position;
/// returns the loss and the gradient with the shape of `logits`.
pub fn cross_entropy_tensor(
    logits: &Tensor,
    targets: &[i64],
    ignore_index: Option<i64>,
    label_smoothing: f32,
) -> Result<(f32, Tensor)> {
    if logits.rank() == 0 {
        return Err(Error::shape(
            "cross_entropy",
            "logits (..., classes)",
            fmt_shape(logits.shape()),
        ));
    }
    let classes = logits.shape()[logits.rank() - 1];
    let rows = logits.shape()[..logits.rank() - 1].iter().product();
    let (loss, grad) = cross_entropy(
        logits.data(),
        rows,
        classes,
        targets,
        ignore_index,
        label_smoothing,
    )?;
    Ok((loss, Tensor::from_vec(logits.shape(), grad)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.7).collect()
    }

    /// Reference loss in f64 straight from the definition (log of softmax, no tricks).
    fn reference(z: &[f64], t: &[i64], ignore: Option<i64>, eps: f64) -> f64 {
        let c = 4;
        let (mut total, mut n) = (0.0, 0.0);
        for (row, &ti) in z.chunks(c).zip(t) {
            if Some(ti) == ignore {
                continue;
            }
            let s: f64 = row.iter().map(|v| v.exp()).sum();
            let logp: Vec<f64> = row.iter().map(|v| (v.exp() / s).ln()).collect();
            total += (1.0 - eps) * -logp[ti as usize] + eps * -logp.iter().sum::<f64>() / c as f64;
            n += 1.0;
        }
        total / n
    }

    #[test]
    fn loss_and_grad_match_definition_and_finite_differences() {
        let z = logits();
        let t = [1i64, 0, 3];
        for (ignore, eps) in [(None, 0.0), (Some(0), 0.0), (Some(0), 0.2), (None, 0.1)] {
            let (loss, grad) = cross_entropy(&z, 3, 4, &t, ignore, eps as f32).unwrap();
            let zd: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            let want = reference(&zd, &t, ignore, eps);
            assert!((loss as f64 - want).abs() < 1e-6, "{loss} vs {want}");
            let h = 1e-5;
            for i in 0..12 {
                let (mut p, mut m) = (zd.clone(), zd.clone());
                p[i] += h;
                m[i] -= h;
                let fd =
                    (reference(&p, &t, ignore, eps) - reference(&m, &t, ignore, eps)) / (2.0 * h);
                assert!((fd - grad[i] as f64).abs() < 1e-6, "{ignore:?} {eps} [{i}]");
            }
        }
    }

    #[test]
    fn large_logits_are_stable() {
        let z = [1000.0f32, 0.0, -1000.0, 1000.0];
        let (loss, grad) = cross_entropy(&z, 2, 2, &[1, 1], None, 0.0).unwrap();
        assert!(loss.is_finite() && (loss - 500.0).abs() < 1e-3, "{loss}");
        // Row 0 is all on the wrong class, row 1 all on the right one; each row weighs 1/2.
        assert_eq!(grad, [0.5, -0.5, 0.0, 0.0]);
    }

    #[test]
    fn all_ignored_gives_zero_not_nan() {
        let (loss, grad) = cross_entropy(&logits(), 3, 4, &[2, 2, 2], Some(2), 0.1).unwrap();
        assert_eq!(loss, 0.0);
        assert!(grad.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let z = logits();
        assert!(matches!(
            cross_entropy(&z, 3, 4, &[0, 4, 1], None, 0.0),
            Err(Error::IndexOutOfRange {
                index: 4,
                size: 4,
                ..
            })
        ));
        assert!(cross_entropy(&z, 3, 4, &[0, -1, 1], None, 0.0).is_err());
        // -100 is only ignored when it is the ignore_index.
        assert!(cross_entropy(&z, 3, 4, &[0, -100, 1], Some(-100), 0.0).is_ok());
        assert!(cross_entropy(&z, 3, 4, &[0, 1], None, 0.0).is_err());
        assert!(cross_entropy(&z, 4, 4, &[0, 1, 1, 1], None, 0.0).is_err());
        assert!(cross_entropy(&z, 3, 4, &[0, 1, 1], None, 1.5).is_err());
        let t = Tensor::from_vec(&[3, 1, 4], z).unwrap();
        let (_, g) = cross_entropy_tensor(&t, &[0, 1, 2], None, 0.0).unwrap();
        assert_eq!(g.shape(), [3, 1, 4]);
        assert!(cross_entropy_tensor(&Tensor::zeros(&[]), &[], None, 0.0).is_err());
    }
}
