//! `recur import`: converts a pretrained model of another toolkit into a recur model directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

/// Which toolkit's checkpoint.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// g2p-en 2.1.0's `g2p_en/checkpoint20.npz` (GRU grapheme-to-phoneme model).
    #[value(name = "g2p-en")]
    G2pEn,
}

/// Imports `checkpoint` and saves the model directory `out` (a new one, or with `force` a
/// model directory to replace, never anything else); returns a one-line summary.
pub fn run(format: Format, checkpoint: &Path, out: &Path, force: bool) -> Result<String> {
    if out.exists() {
        if !force {
            bail!("{}: exists (use --force to replace it)", out.display());
        }
        if !out.join(recur::checkpoint::CONFIG_FILE).is_file() {
            bail!(
                "{}: exists and is not a model directory; refusing to replace it",
                out.display()
            );
        }
    }
    let t = match format {
        Format::G2pEn => recur_import::g2p_en::import(checkpoint)?,
    };
    t.save(out, None)
        .with_context(|| format!("{}: cannot save the model", out.display()))?;
    Ok(format!(
        "imported {} ({} source / {} target symbols); model: {}",
        checkpoint.display(),
        t.src_vocab.len(),
        t.tgt_vocab.len(),
        out.display()
    ))
}
