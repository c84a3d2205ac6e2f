//! Importers for pretrained models from other toolkits, and the `.npz` reader they share.
//!
//! [`g2p_en`]: the GRU grapheme-to-phoneme model of the PyPI package g2p-en 2.1.0.
#![warn(missing_docs)]

pub mod g2p_en;

use std::collections::BTreeMap;
use std::path::Path;

use recur::error::{Error, Result};
use recur::tensor::{fmt_shape, Tensor};

/// Reads every array of a NumPy `.npz` archive (`np.savez`, stored or deflated) as float32
/// tensors, by array name (the member name without `.npy`).
///
/// Arrays that are not little-endian float32 in C order, and members that are not `.npy`
/// files, are errors naming them.
pub fn read_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bad = |msg: String| Error::Parse {
        path: path.to_path_buf(),
        line: None,
        msg,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not an .npz (zip) archive: {e}")))?;
    let members: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let mut arrays = BTreeMap::new();
    for member in members {
        let name = member
            .strip_suffix(".npy")
            .ok_or_else(|| bad(format!("member `{member}` is not an .npy array")))?
            .to_owned();
        let entry = zip
            .by_name(&member)
            .map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let npy = npyz::NpyFile::new(entry).map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let dtype = npy.dtype();
        if !matches!(&dtype, npyz::DType::Plain(ts) if ts.to_string() == "<f4") {
            return Err(bad(format!(
                "array `{name}` has dtype {}, expected little-endian float32 '<f4'",
                dtype.descr()
            )));
        }
        if npy.order() != npyz::Order::C {
            return Err(bad(format!(
                "array `{name}` is in Fortran order, expected C order"
            )));
        }
        let data: Vec<f32> = npy
            .into_vec()
            .map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let t = Tensor::from_vec(&shape, data)
            .map_err(|e| bad(format!("array `{name}` {}: {e}", fmt_shape(&shape))))?;
        arrays.insert(name, t);
    }
    Ok(arrays)
}
