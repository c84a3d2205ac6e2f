//! Importers for pretrained models from other toolkits, and the `.npz` reader they share.
//!
//! [`g2p_en`]: the GRU grapheme-to-phoneme model of the PyPI package g2p-en 2.1.0.
#![warn(missing_docs)]

pub mod g2p_en;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use recur::error::{Error, Result};
use recur::tensor::{fmt_shape, Tensor};

/// The largest `.npy` header read (NumPy's own default `max_header_size`).
pub const MAX_NPY_HEADER: usize = 10_000;

/// The deepest bracket nesting accepted in an `.npy` header: the dict, the shape tuple, and
/// room for a structured dtype's list of tuples (refused later, with its dtype named). The
/// header parser backtracks exponentially in the nesting depth.
pub const MAX_NPY_HEADER_DEPTH: usize = 4;

/// The largest array read, in bytes of float32 (1 GiB); its shape is checked before any data.
pub const MAX_NPY_ARRAY_BYTES: usize = 1 << 30;

/// Reads the preamble and header of an `.npy` stream (magic, version, header length, header)
/// and checks the header against [`MAX_NPY_HEADER`] and [`MAX_NPY_HEADER_DEPTH`]; returns the
/// bytes read, for the `.npy` parser.
fn npy_header(r: &mut impl Read) -> std::result::Result<Vec<u8>, String> {
    let mut head = vec![0u8; 10];
    r.read_exact(&mut head)
        .map_err(|e| format!("not an .npy array (no preamble: {e})"))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err("not an .npy array (wrong magic)".to_owned());
    }
    let len = match head[6] {
        1 => u16::from_le_bytes([head[8], head[9]]) as usize,
        2 | 3 => {
            let mut more = [0u8; 2];
            r.read_exact(&mut more)
                .map_err(|e| format!("truncated .npy preamble: {e}"))?;
            head.extend_from_slice(&more);
            u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    if len > MAX_NPY_HEADER {
        return Err(format!(
            ".npy header of {len} bytes, more than the limit of {MAX_NPY_HEADER}"
        ));
    }
    let start = head.len();
    head.resize(start + len, 0);
    r.read_exact(&mut head[start..])
        .map_err(|e| format!("truncated .npy header: {e}"))?;
    let mut depth = 0usize;
    for &b in &head[start..] {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if depth > MAX_NPY_HEADER_DEPTH {
            return Err(format!(
                ".npy header nests brackets deeper than the limit of {MAX_NPY_HEADER_DEPTH}"
            ));
        }
    }
    Ok(head)
}

/// Reads every array of a NumPy `.npz` archive (`np.savez`, stored or deflated) as float32
/// tensors, by array name (the member name without `.npy`).
///
/// Arrays that are not little-endian float32 in C order, and members that are not `.npy`
/// files, are errors naming them, and so are arrays over the limits [`MAX_NPY_HEADER`],
/// [`MAX_NPY_HEADER_DEPTH`] and [`MAX_NPY_ARRAY_BYTES`].
pub fn read_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_npz_from(std::io::BufReader::new(file), path)
}

/// [`read_npz`] of an archive already in memory; `origin` names it in errors.
pub fn read_npz_bytes(bytes: &[u8], origin: &Path) -> Result<BTreeMap<String, Tensor>> {
    read_npz_from(std::io::Cursor::new(bytes), origin)
}

/// [`read_npz`] of any seekable reader; `origin` names it in errors.
pub fn read_npz_from<R: std::io::Read + std::io::Seek>(
    reader: R,
    origin: &Path,
) -> Result<BTreeMap<String, Tensor>> {
    let path = origin;
    let bad = |msg: String| Error::Parse {
        path: path.to_path_buf(),
        line: None,
        msg,
    };
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| bad(format!("not an .npz (zip) archive: {e}")))?;
    let members: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let mut arrays = BTreeMap::new();
    for member in members {
        let name = member
            .strip_suffix(".npy")
            .ok_or_else(|| bad(format!("member `{member}` is not an .npy array")))?
            .to_owned();
        let mut entry = zip
            .by_name(&member)
            .map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let header = npy_header(&mut entry).map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let npy = npyz::NpyFile::new(std::io::Cursor::new(header).chain(entry))
            .map_err(|e| bad(format!("array `{name}`: {e}")))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let bytes = shape
            .iter()
            .try_fold(4usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_NPY_ARRAY_BYTES);
        if bytes.is_none() {
            return Err(bad(format!(
                "array `{name}` {} is larger than the limit of {MAX_NPY_ARRAY_BYTES} bytes",
                fmt_shape(&shape)
            )));
        }
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
