//! Checkpoint averaging: the element-wise mean of the parameters of several checkpoints of one
//! architecture (typically the last evaluations of a run, kept with `train.keep_last`), saved
//! as a model directory.
//!
//! The checkpoints must have the same `[model]` configuration, vocabularies, tokenizers and
//! source preprocessing, and the same tensors; the result takes the configuration of the last
//! one. Each value is summed in f64 in the order given, divided by the count and rounded once
//! to f32 (the correctly rounded mean of two checkpoints).
//!
//! The output directory gets an `averaged.json` (the checkpoints it was made from) beside the
//! model's files, written in the same atomic swap: a directory holding one was made by
//! averaging and may be replaced by another average; anything else there is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::models::ModelSource;
use crate::module::Module;
use crate::transducer::Transducer;

/// The provenance file of an averaged model directory.
pub const AVERAGED_FILE: &str = "averaged.json";

/// What `averaged.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averaged {
    /// The checkpoint directories averaged, in order.
    pub checkpoints: Vec<PathBuf>,
}

/// Loads the checkpoints `dirs` (at least one) and returns the model whose every parameter is
/// their mean (see the [module docs](self)); errors name the checkpoint that differs.
pub fn average(dirs: &[PathBuf]) -> Result<Transducer> {
    let Some((first, rest)) = dirs.split_first() else {
        return Err(Error::arg("average", "checkpoints", "at least one", 0));
    };
    let load = |d: &PathBuf| Transducer::from_files(&ModelSource::Dir(d.clone()).files()?);
    let mut base = load(first)?;
    let mut sums: Vec<Vec<f64>> = base
        .model
        .params()
        .iter()
        .map(|p| p.value.data().iter().map(|&x| f64::from(x)).collect())
        .collect();
    for dir in rest {
        let other = load(dir)?;
        check_same_model(&base, &other, dir)?;
        add_params(&mut sums, &other, dir)?;
        base.config = other.config;
    }
    let n = dirs.len() as f64;
    for (p, sum) in base.model.params_mut().into_iter().zip(&sums) {
        for (v, &s) in p.value.data_mut().iter_mut().zip(sum) {
            *v = (s / n) as f32;
        }
        p.touch();
    }
    Ok(base)
}

/// Refuses `other` (from `dir`) unless it has `base`'s architecture and reads and writes the
/// same tokens.
fn check_same_model(base: &Transducer, other: &Transducer, dir: &Path) -> Result<()> {
    let differs = |what: &str| Error::Parse {
        path: dir.join(CONFIG_FILE),
        line: None,
        msg: format!("cannot be averaged with the first checkpoint: its {what} differs"),
    };
    if other.config.model != base.config.model {
        return Err(differs("[model] configuration"));
    }
    match base.incompatibility(other) {
        Some(what) => Err(differs(what)),
        None => Ok(()),
    }
}

/// Adds `other`'s parameters to `sums` (one per parameter of the first checkpoint, in order),
/// checking their names and shapes.
fn add_params(sums: &mut [Vec<f64>], other: &Transducer, dir: &Path) -> Result<()> {
    let params = other.model.params();
    if params.len() != sums.len() {
        let msg = format!(
            "{} has {} tensors, not {}",
            dir.display(),
            params.len(),
            sums.len()
        );
        return Err(Error::tensor("average", "", msg));
    }
    for (p, sum) in params.iter().zip(sums.iter_mut()) {
        if p.value.numel() != sum.len() {
            let msg = format!(
                "{}: {} values, not {}",
                dir.display(),
                p.value.numel(),
                sum.len()
            );
            return Err(Error::tensor("average", p.name.clone(), msg));
        }
        for (s, &x) in sum.iter_mut().zip(p.value.data()) {
            *s += f64::from(x);
        }
    }
    Ok(())
}

/// Averages `checkpoints` ([`average`]) and saves the result to `out` atomically, with its
/// `averaged.json`. Refuses an existing `out` that is not an earlier average.
pub fn average_into(checkpoints: &[PathBuf], out: &Path) -> Result<()> {
    if out.exists() && !out.join(AVERAGED_FILE).is_file() {
        return Err(Error::io(
            out,
            std::io::Error::other(format!(
                "exists and was not written by averaging (no {AVERAGED_FILE}); choose a new \
                 directory"
            )),
        ));
    }
    let t = average(checkpoints)?;
    let provenance = Averaged {
        checkpoints: checkpoints.to_vec(),
    };
    let mut json = serde_json::to_vec_pretty(&provenance)
        .map_err(|e| Error::io(out.join(AVERAGED_FILE), e.into()))?;
    json.push(b'\n');
    Checkpoint::save_with_files(
        out,
        &t.model,
        &t.config,
        &[("src", &t.src_vocab), ("tgt", &t.tgt_vocab)],
        None,
        &[(AVERAGED_FILE, &json)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Vocab;
    use crate::transducer::RunConfig;

    fn tiny(seed: u64, hidden: usize) -> Transducer {
        let mut config = RunConfig::default();
        (config.model.emb_dim, config.model.hidden_size) = (4, hidden);
        config.train.seed = seed;
        let words = vec![vec!["a", "b", "c"]];
        let v = Vocab::from_sequences(&words, 1);
        Transducer::new(config, v.clone(), v).unwrap()
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("recur-avg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_average_of_two_checkpoints_is_their_mean() {
        let dir = temp("mean");
        let (a, b) = (tiny(1, 3), tiny(2, 3));
        a.save(dir.join("a"), None).unwrap();
        b.save(dir.join("b"), None).unwrap();
        let out = dir.join("avg");
        average_into(&[dir.join("a"), dir.join("b")], &out).unwrap();
        let avg = Transducer::load(&out).unwrap();
        let (pa, pb, pm) = (a.model.params(), b.model.params(), avg.model.params());
        assert_eq!(pm.len(), pa.len());
        for ((x, y), m) in pa.iter().zip(&pb).zip(&pm) {
            assert_eq!(m.name, x.name);
            for ((&x, &y), &m) in x
                .value
                .data()
                .iter()
                .zip(y.value.data())
                .zip(m.value.data())
            {
                let by_hand = ((f64::from(x) + f64::from(y)) / 2.0) as f32;
                assert_eq!(m.to_bits(), by_hand.to_bits());
            }
        }
        let written: Averaged =
            serde_json::from_slice(&std::fs::read(out.join(AVERAGED_FILE)).unwrap()).unwrap();
        assert_eq!(written.checkpoints, vec![dir.join("a"), dir.join("b")]);
        // An earlier average may be replaced; anything else is refused.
        average_into(&[dir.join("b")], &out).unwrap();
        let e = average_into(&[dir.join("b")], &dir.join("a")).unwrap_err();
        assert!(e.to_string().contains("not written by averaging"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn checkpoints_of_other_shapes_are_refused_by_name() {
        let dir = temp("shapes");
        tiny(1, 3).save(dir.join("a"), None).unwrap();
        tiny(1, 4).save(dir.join("wide"), None).unwrap();
        let e = average(&[dir.join("a"), dir.join("wide")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("wide") && e.contains("[model]"), "{e}");
        assert!(!dir.join("avg").exists());
        assert!(average(&[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
