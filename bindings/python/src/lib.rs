//! The extension module `recur._recur`: thin wrappers over the `recur` library. The Python
//! package (`python/recur/`) builds its public API on these; everything that has to be fast
//! or exact (decoding, layers, training) runs here, with the GIL released.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod layers;
mod model;
mod training;

/// A library error as Python's `ValueError`, carrying recur's message.
pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Converts g2p_en 2.1.0's `checkpoint20.npz` into a recur model directory `out_dir` (a new
/// directory, or with `force` an existing model directory to replace); returns a summary.
#[pyfunction]
#[pyo3(signature = (npz, out_dir, force = false))]
fn import_g2p_en(
    py: Python<'_>,
    npz: std::path::PathBuf,
    out_dir: std::path::PathBuf,
    force: bool,
) -> PyResult<String> {
    check_import_target(&out_dir, force)?;
    let t = py
        .detach(|| recur_import::g2p_en::import(&npz))
        .map_err(value_error)?;
    py.detach(|| t.save(&out_dir, None)).map_err(value_error)?;
    Ok(format!(
        "imported {} ({} source / {} target symbols); model: {}",
        npz.display(),
        t.src_vocab.len(),
        t.tgt_vocab.len(),
        out_dir.display()
    ))
}

/// As `recur import`: never replaces anything but a model directory, and that only when asked.
fn check_import_target(out: &std::path::Path, force: bool) -> PyResult<()> {
    if !out.exists() {
        return Ok(());
    }
    if !force {
        let msg = format!("{}: exists (pass force=True to replace it)", out.display());
        return Err(PyValueError::new_err(msg));
    }
    if !out.join(recur::checkpoint::CONFIG_FILE).is_file() {
        let msg = format!(
            "{}: exists and is not a model directory; refusing to replace it",
            out.display()
        );
        return Err(PyValueError::new_err(msg));
    }
    Ok(())
}

/// The names of the models compiled into this build (`recur.load(name)` finds them anywhere).
/// `text` with its English numbers written in words (cardinals, years, ordinals, decimals,
/// amounts), as the English G2P pipeline reads them; see `recur::numbers`.
#[pyfunction]
fn spell_numbers(text: &str) -> String {
    recur::numbers::spell_numbers(text).into_owned()
}

#[pyfunction]
fn bundled_models() -> Vec<&'static str> {
    recur::models::BUNDLED.iter().map(|m| m.name).collect()
}

/// Sets the number of threads recur's kernels use (0 = one per core, the default), as the
/// CLI's `--threads`. The worker pool is fixed once it has started, so call it before the
/// first decode or training step; returns whether the pool took the setting.
#[pyfunction]
fn set_num_threads(n: usize) -> bool {
    recur::gemm::set_num_threads(n);
    n == 0
        || rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .is_ok()
}

#[pymodule]
fn _recur(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(import_g2p_en, m)?)?;
    m.add_function(wrap_pyfunction!(bundled_models, m)?)?;
    m.add_function(wrap_pyfunction!(spell_numbers, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<layers::Recurrent>()?;
    m.add_class::<layers::Cell>()?;
    m.add_class::<layers::Dense>()?;
    m.add_class::<layers::Lookup>()?;
    Ok(())
}
