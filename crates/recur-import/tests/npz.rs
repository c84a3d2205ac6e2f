//! `read_npz` on hostile archives: the inputs the `npz` fuzz target (`fuzz/`, see its README)
//! found, as regression tests, and a replay of every file of `fuzz/regressions/npz/`.

use std::path::{Path, PathBuf};

use recur_import::{read_npz, read_npz_bytes, MAX_NPY_ARRAY_BYTES, MAX_NPY_HEADER};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/npz")
}

fn err_of(file: &str) -> String {
    let path = regressions().join(file);
    let bytes = std::fs::read(&path).unwrap();
    let start = std::time::Instant::now();
    let err = read_npz_bytes(&bytes, &path).unwrap_err().to_string();
    assert!(
        start.elapsed().as_secs() < 2,
        "{file}: {:?}",
        start.elapsed()
    );
    // The file-path entry point reads the same way.
    assert_eq!(read_npz(&path).unwrap_err().to_string(), err);
    err
}

/// Found by the fuzzer: a deflated member whose `.npy` shape is a tuple nested 30 deep; the
/// header parser backtracked exponentially (a timeout, minutes per array).
#[test]
fn deeply_nested_header_is_refused_at_once() {
    for file in ["nested_shape_timeout.npz", "nested_shape.npz"] {
        let err = err_of(file);
        assert!(
            err.contains("nests brackets deeper than the limit of 4"),
            "{err}"
        );
        assert!(err.contains("array `"), "{err}");
    }
}

/// A shape of 2^40 float32 with no data is refused from its header, before any data is read.
#[test]
fn array_over_the_size_limit_is_refused_from_its_shape() {
    let err = err_of("huge_shape.npz");
    assert!(err.contains("array `a` (1099511627776,)"), "{err}");
    assert!(
        err.contains(&format!("limit of {MAX_NPY_ARRAY_BYTES} bytes")),
        "{err}"
    );
}

/// A header longer than NumPy's own limit is refused before it is read.
#[test]
fn header_over_the_length_limit_is_refused() {
    let mut npy = b"\x93NUMPY\x02\x00".to_vec();
    npy.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut zip = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file("big.npy", opts).unwrap();
        std::io::Write::write_all(&mut w, &npy).unwrap();
        w.finish().unwrap();
    }
    let err = read_npz_bytes(&zip, Path::new("mem.npz"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("more than the limit of {MAX_NPY_HEADER}")),
        "{err}"
    );
}

#[test]
fn replay_npz_regressions() {
    for entry in std::fs::read_dir(regressions()).unwrap() {
        let path = entry.unwrap().path();
        let _ = read_npz_bytes(&std::fs::read(&path).unwrap(), &path);
    }
}
