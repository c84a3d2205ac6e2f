//! Golden test cases computed with PyTorch (`recur-fixture/1`, see `tests/fixtures/README.md`)
//! and the relative-plus-absolute [`Tolerance`] they are checked with.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// The elements of one stored array, in the dtype it was stored with.
#[derive(Clone, Debug)]
pub enum ArrayData {
    /// float32 (inputs, parameters, upstream gradients).
    F32(Vec<f32>),
    /// float64 (reference results).
    F64(Vec<f64>),
    /// int64 (indices, lengths, targets).
    I64(Vec<i64>),
}

/// One stored array.
#[derive(Clone, Debug)]
pub struct Array {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its elements.
    pub data: ArrayData,
}

/// One golden case: its description (`case` metadata) and its named arrays.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The file stem, e.g. `lstm_packed_bidir`.
    pub name: String,
    /// The `case` metadata: `kind` plus constructor arguments.
    pub case: serde_json::Value,
    arrays: HashMap<String, Array>,
}

impl Fixture {
    /// Reads a `.safetensors` fixture file.
    pub fn load(path: &Path) -> Result<Fixture> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let parse = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg,
        };
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| parse(format!("not safetensors: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let case_text = meta
            .get("case")
            .ok_or_else(|| parse("no `case` metadata".into()))?;
        let case: serde_json::Value =
            serde_json::from_str(case_text).map_err(|e| parse(format!("bad `case` JSON: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| parse(e.to_string()))?;
        let mut arrays = HashMap::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let data = match view.dtype() {
                Dtype::F32 => ArrayData::F32(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                Dtype::F64 => ArrayData::F64(
                    raw.chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                Dtype::I64 => ArrayData::I64(
                    raw.chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                other => {
                    return Err(parse(format!(
                        "tensor `{name}` has unsupported dtype {other:?}"
                    )))
                }
            };
            arrays.insert(
                name,
                Array {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Fixture { name, case, arrays })
    }

    /// The case's `kind` (`lstm`, `gru_cell`, `adam`, `seq2seq`, ...).
    pub fn kind(&self) -> &str {
        self.case.get("kind").and_then(|k| k.as_str()).unwrap_or("")
    }

    /// Whether an array of this name is stored.
    pub fn has(&self, name: &str) -> bool {
        self.arrays.contains_key(name)
    }

    /// Every array name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.arrays.keys().map(|s| s.as_str()).collect();
        v.sort();
        v
    }

    /// The raw array.
    pub fn array(&self, name: &str) -> Result<&Array> {
        self.arrays
            .get(name)
            .ok_or_else(|| Error::tensor("fixture", name, "missing"))
    }

    /// A float32 input as a [`Tensor`] (float64 arrays are rounded to f32).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let a = self.array(name)?;
        let data = match &a.data {
            ArrayData::F32(v) => v.clone(),
            ArrayData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            ArrayData::I64(_) => {
                return Err(Error::tensor("fixture", name, "is int64, expected float"))
            }
        };
        Tensor::from_vec(&a.shape, data)
    }

    /// An optional float32 input.
    pub fn tensor_opt(&self, name: &str) -> Result<Option<Tensor>> {
        if self.has(name) {
            self.tensor(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An int64 array with its shape.
    pub fn ints(&self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let a = self.array(name)?;
        match &a.data {
            ArrayData::I64(v) => Ok((a.shape.clone(), v.clone())),
            _ => Err(Error::tensor("fixture", name, "expected int64")),
        }
    }

    /// A reference result in float64 with its shape.
    pub fn reference(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let a = self.array(name)?;
        let v = match &a.data {
            ArrayData::F64(v) => v.clone(),
            ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        };
        Ok((a.shape.clone(), v))
    }

    /// A case argument as usize (missing or null → `default`).
    pub fn arg_usize(&self, key: &str, default: usize) -> usize {
        self.case
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(default)
    }

    /// A case argument as f64 (missing or null → `default`).
    pub fn arg_f64(&self, key: &str, default: f64) -> f64 {
        self.case
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }

    /// A case argument as bool (missing or null → `default`).
    pub fn arg_bool(&self, key: &str, default: bool) -> bool {
        self.case
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }

    /// A case argument as a string, if present and a string.
    pub fn arg_str(&self, key: &str) -> Option<&str> {
        self.case.get(key).and_then(|v| v.as_str())
    }
}

/// Elementwise acceptance rule `|got - want| <= atol + rtol * |want|`; NaN never passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f64,
    /// Relative part.
    pub rtol: f64,
}

impl Tolerance {
    /// Outputs of every case, and gradients of the short cases.
    pub const OUTPUT: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };
    /// Gradients of the long (40-step) and seq2seq cases.
    pub const LONG_GRADIENT: Tolerance = Tolerance {
        atol: 1e-4,
        rtol: 1e-3,
    };

    /// Whether one element passes.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        (got - want).abs() <= self.atol + self.rtol * want.abs()
    }
}

/// How one computed tensor compares with its reference.
#[derive(Clone, Debug)]
pub struct TensorCheck {
    /// The reference array's name (`output`, `grad.weight_ih_l0`, ...).
    pub name: String,
    /// Largest `|got - want|`.
    pub max_abs: f64,
    /// Largest `|got - want| / |want|` over elements with `want != 0`.
    pub max_rel: f64,
    /// Largest `|got - want| / (atol + rtol |want|)`: above 1 fails.
    pub worst_ratio: f64,
    /// Whether every element passed (and the shapes matched).
    pub ok: bool,
    /// Why it failed, when it failed for a reason other than values (shape, NaN).
    pub note: Option<String>,
}

/// Compares `got` with reference `want` elementwise.
pub fn compare(
    name: &str,
    got: &[f32],
    got_shape: &[usize],
    want: &[f64],
    want_shape: &[usize],
    tol: Tolerance,
) -> TensorCheck {
    let mut check = TensorCheck {
        name: name.to_string(),
        max_abs: 0.0,
        max_rel: 0.0,
        worst_ratio: 0.0,
        ok: true,
        note: None,
    };
    if got_shape != want_shape {
        check.ok = false;
        check.worst_ratio = f64::INFINITY;
        check.note = Some(format!(
            "shape {} != reference {}",
            fmt_shape(got_shape),
            fmt_shape(want_shape)
        ));
        return check;
    }
    for (&g, &w) in got.iter().zip(want) {
        let g = g as f64;
        let err = (g - w).abs();
        if err.is_nan() {
            check.ok = false;
            check.max_abs = f64::NAN;
            check.worst_ratio = f64::INFINITY;
            check.note = Some("NaN".into());
            continue;
        }
        check.max_abs = check.max_abs.max(err);
        if w != 0.0 {
            check.max_rel = check.max_rel.max(err / w.abs());
        }
        check.worst_ratio = check.worst_ratio.max(err / (tol.atol + tol.rtol * w.abs()));
        if !tol.accepts(g, w) {
            check.ok = false;
        }
    }
    check
}
