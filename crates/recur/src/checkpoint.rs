//! Model checkpoints: one directory holding everything needed to resume training or run a model.
//!
//! | file | content |
//! | --- | --- |
//! | `model.safetensors` | every parameter as float32 under its PyTorch `state_dict` name |
//! | `config.json` | the caller's configuration struct, pretty JSON |
//! | `<name>_vocab.json` | each named vocabulary (`src`, `tgt`, ...), see [`Vocab::save`] |
//! | `training_state.safetensors` | optional: named f32 tensors (optimizer moments, ...) |
//! | `training_state.json` | optional, with the above: step, epoch, best score, RNG state, ... |
//!
//! `model.safetensors` loads in PyTorch without pickle:
//! `model.load_state_dict(safetensors.torch.load_file("ckpt/model.safetensors"))`.
//!
//! [`Checkpoint::save`] is atomic: it writes a complete sibling directory `DIR.tmp-<pid>`,
//! fsyncs it, then swaps it in (`DIR` → `DIR.old-<pid>`, `DIR.tmp-<pid>` → `DIR`, remove the old
//! one). If the process dies between the two renames only `DIR.old-<pid>` exists; every loader
//! falls back to it, and the next save restores it first. A checkpoint directory is assumed to
//! have one writer at a time.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::data::Vocab;
use crate::error::{Error, Result};
use crate::module::Module;
use crate::tensor::{fmt_shape, Tensor};

/// The parameters file inside a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The configuration file inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// The optional training-state tensors file inside a checkpoint directory.
pub const STATE_TENSORS_FILE: &str = "training_state.safetensors";
/// The optional training-state metadata file inside a checkpoint directory.
pub const STATE_META_FILE: &str = "training_state.json";

/// What is needed to resume training besides the parameters.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TrainingState {
    /// Named f32 tensors, e.g. Adam's `exp_avg.<param>` and `exp_avg_sq.<param>`.
    pub tensors: Vec<(String, Tensor)>,
    /// Anything else (step, epoch, best score, RNG state), as the caller chooses.
    pub meta: serde_json::Value,
}

/// Saves and loads checkpoint directories; see the [module docs](self) for the layout.
pub struct Checkpoint;

impl Checkpoint {
    /// Atomically writes a checkpoint to `dir`, replacing any previous one there.
    ///
    /// `vocabs` are `(name, vocab)` pairs stored as `<name>_vocab.json`; a name is ASCII
    /// letters, digits, `_` or `-`. On error the previous checkpoint is left untouched.
    pub fn save(
        dir: impl AsRef<Path>,
        model: &(impl Module + ?Sized),
        config: &(impl Serialize + ?Sized),
        vocabs: &[(&str, &Vocab)],
        state: Option<&TrainingState>,
    ) -> Result<()> {
        Checkpoint::save_with_files(dir, model, config, vocabs, state, &[])
    }

    /// [`Checkpoint::save`] with further files written into the checkpoint (name, content),
    /// swapped in with the rest: a file name is ASCII letters, digits, `_`, `-` or `.`, not
    /// starting with `.`, and none of the checkpoint's own.
    pub fn save_with_files(
        dir: impl AsRef<Path>,
        model: &(impl Module + ?Sized),
        config: &(impl Serialize + ?Sized),
        vocabs: &[(&str, &Vocab)],
        state: Option<&TrainingState>,
        files: &[(&str, &[u8])],
    ) -> Result<()> {
        let dir = dir.as_ref();
        let (parent, name) = split_dir(dir)?;
        for (v, _) in vocabs {
            vocab_file(v)?;
        }
        for (f, _) in files {
            extra_file(f)?;
        }
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        recover(dir)?;

        let pid = std::process::id();
        let tmp = parent.join(format!("{name}.tmp-{pid}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let written = write_contents(&tmp, model, config, vocabs, state).and_then(|()| {
            for (f, bytes) in files {
                write_synced(&tmp.join(f), bytes)?;
            }
            sync_dir(&tmp)
        });
        if let Err(e) = written {
            // Best effort: the error that matters is the one being returned.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }

        let old = parent.join(format!("{name}.old-{pid}"));
        let had_old = dir.exists();
        if had_old {
            fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        }
        if let Err(e) = fs::rename(&tmp, dir) {
            if had_old {
                let _ = fs::rename(&old, dir);
            }
            return Err(Error::io(dir, e));
        }
        sync_dir(&parent)?;
        if had_old {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        remove_stale_siblings(&parent, &name);
        Ok(())
    }

    /// Loads the parameters of `model` from `dir/model.safetensors`; see [`load_params_from`].
    pub fn load_model(dir: impl AsRef<Path>, model: &mut (impl Module + ?Sized)) -> Result<()> {
        load_params_from(resolve(dir.as_ref()).join(MODEL_FILE), model)
    }

    /// Reads `dir/config.json` into the caller's configuration type.
    pub fn load_config<T: DeserializeOwned>(dir: impl AsRef<Path>) -> Result<T> {
        read_json(&resolve(dir.as_ref()).join(CONFIG_FILE))
    }

    /// Reads the vocabulary saved under `name` (file `<name>_vocab.json`).
    pub fn load_vocab(dir: impl AsRef<Path>, name: &str) -> Result<Vocab> {
        Vocab::load(resolve(dir.as_ref()).join(vocab_file(name)?))
    }

    /// Reads the training state, or `None` if the checkpoint was saved without one.
    pub fn load_state(dir: impl AsRef<Path>) -> Result<Option<TrainingState>> {
        let dir = resolve(dir.as_ref());
        let (tensors_path, meta_path) = (dir.join(STATE_TENSORS_FILE), dir.join(STATE_META_FILE));
        if !tensors_path.exists() && !meta_path.exists() {
            return Ok(None);
        }
        // Half a training state is corruption, not absence: report the missing half.
        let meta = read_json(&meta_path)?;
        let tensors = load_tensors(&tensors_path)?;
        Ok(Some(TrainingState { tensors, meta }))
    }
}

/// Writes named f32 tensors to a `.safetensors` file (with PyTorch's `format: pt` metadata) and
/// fsyncs it. Not atomic by itself; [`Checkpoint::save`] makes the whole directory atomic.
pub fn save_tensors<S: AsRef<str>>(path: impl AsRef<Path>, tensors: &[(S, &Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        if !seen.insert(name.as_ref()) {
            return Err(Error::tensor(
                "save_tensors",
                name.as_ref(),
                "duplicate name",
            ));
        }
    }
    // safetensors stores little-endian bytes; f32::to_le_bytes makes that explicit everywhere.
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data().iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, t), b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape().to_vec(), b)
            .map_err(|e| Error::tensor("save_tensors", name.as_ref(), e.to_string()))?;
        views.push((name.as_ref(), view));
    }
    let meta = Some(HashMap::from([("format".to_owned(), "pt".to_owned())]));
    let out = safetensors::tensor::serialize(views, &meta)
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    write_synced(path, &out)
}

/// Reads every tensor of a `.safetensors` file, sorted by name. Only float32 is accepted: any
/// other dtype is an error naming the file, the tensor and its dtype.
pub fn load_tensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    tensors_from_bytes(&bytes, path)
}

/// [`load_tensors`] of a `.safetensors` file's content; `origin` names it in errors.
pub fn tensors_from_bytes(bytes: &[u8], origin: &Path) -> Result<Vec<(String, Tensor)>> {
    let parse = |msg: String| Error::Parse {
        path: origin.to_path_buf(),
        line: None,
        msg,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| parse(format!("corrupt safetensors file: {e}")))?;
    let mut out = Vec::with_capacity(st.len());
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(parse(format!(
                "tensor `{name}` has dtype {:?}; only F32 is supported",
                view.dtype()
            )));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let t = Tensor::from_vec(view.shape(), data).map_err(|e| parse(e.to_string()))?;
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Loads every parameter of `model` from `path`: a `.safetensors` file, or a checkpoint
/// directory (then its `model.safetensors`).
///
/// The file must hold exactly the model's parameter names with the same shapes. Otherwise
/// nothing is changed and the error lists every missing tensor, every unexpected one, and every
/// shape mismatch (name, expected, got).
pub fn load_params_from(path: impl AsRef<Path>, model: &mut (impl Module + ?Sized)) -> Result<()> {
    let path = path.as_ref();
    let path = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    set_params(load_tensors(&path)?, &path, model)
}

/// Sets every parameter of `model` from named tensors (see [`load_params_from`] for the
/// checks); `origin` names their file in errors.
pub fn set_params(
    tensors: Vec<(String, Tensor)>,
    origin: &Path,
    model: &mut (impl Module + ?Sized),
) -> Result<()> {
    let path = origin;
    let mut stored: HashMap<String, Tensor> = tensors.into_iter().collect();

    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    let mut first_bad = None;
    for p in model.params() {
        match stored.get(&p.name) {
            None => missing.push(p.name.clone()),
            Some(t) if t.shape() != p.value.shape() => mismatched.push(format!(
                "{}: expected {}, got {}",
                p.name,
                fmt_shape(p.value.shape()),
                fmt_shape(t.shape())
            )),
            Some(_) => continue,
        }
        first_bad.get_or_insert_with(|| p.name.clone());
    }
    let wanted: HashSet<String> = model.params().iter().map(|p| p.name.clone()).collect();
    let mut unexpected: Vec<String> = stored
        .keys()
        .filter(|k| !wanted.contains(*k))
        .cloned()
        .collect();
    unexpected.sort();

    if !missing.is_empty() || !mismatched.is_empty() || !unexpected.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing tensors [{}]", missing.join(", ")));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected tensors [{}]", unexpected.join(", ")));
        }
        if !mismatched.is_empty() {
            parts.push(format!("shape mismatches [{}]", mismatched.join("; ")));
        }
        let name = first_bad.unwrap_or_else(|| unexpected[0].clone());
        return Err(Error::tensor(
            "load_params_from",
            name,
            format!(
                "{} does not match the model: {}",
                path.display(),
                parts.join("; ")
            ),
        ));
    }
    for p in model.params_mut() {
        if let Some(t) = stored.remove(&p.name) {
            p.value = t;
            p.touch();
        }
    }
    Ok(())
}

/// Writes every file of a checkpoint into `dir` (the temporary directory), then fsyncs `dir`.
fn write_contents(
    dir: &Path,
    model: &(impl Module + ?Sized),
    config: &(impl Serialize + ?Sized),
    vocabs: &[(&str, &Vocab)],
    state: Option<&TrainingState>,
) -> Result<()> {
    let params = model.params();
    let named: Vec<(&str, &Tensor)> = params.iter().map(|p| (p.name.as_str(), &p.value)).collect();
    save_tensors(dir.join(MODEL_FILE), &named)?;
    write_json(&dir.join(CONFIG_FILE), config)?;
    for (name, vocab) in vocabs {
        write_synced(&dir.join(vocab_file(name)?), vocab.to_json().as_bytes())?;
    }
    if let Some(state) = state {
        let named: Vec<(&str, &Tensor)> =
            state.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_tensors(dir.join(STATE_TENSORS_FILE), &named)?;
        write_json(&dir.join(STATE_META_FILE), &state.meta)?;
    }
    sync_dir(dir)
}

/// `src` → `src_vocab.json`; rejects names that could escape the directory.
fn vocab_file(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::arg(
            "Checkpoint",
            "vocab name",
            "ASCII letters, digits, `_` or `-`",
            format!("{name:?}"),
        ));
    }
    Ok(format!("{name}_vocab.json"))
}

/// Checks the name of an extra file of [`Checkpoint::save_with_files`].
fn extra_file(name: &str) -> Result<()> {
    let own = [MODEL_FILE, CONFIG_FILE, STATE_TENSORS_FILE, STATE_META_FILE];
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with("_vocab.json")
        && !own.contains(&name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        let want = "ASCII letters, digits, `_`, `-` or `.`, not a checkpoint file's name";
        return Err(Error::arg(
            "Checkpoint",
            "file name",
            want,
            format!("{name:?}"),
        ));
    }
    Ok(())
}

/// The parent directory and final component of a checkpoint path.
fn split_dir(dir: &Path) -> Result<(PathBuf, String)> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::arg(
                "Checkpoint::save",
                "dir",
                "a named directory",
                dir.display(),
            )
        })?
        .to_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Sibling directories `NAME.<tag>-*` of a checkpoint, e.g. tag `old`.
fn siblings(parent: &Path, name: &str, tag: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.{tag}-");
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Where to read a checkpoint: `dir`, or, if a save died between its two renames, the previous
/// checkpoint it had moved aside (`DIR.old-<pid>`, the newest if several).
pub(crate) fn resolve(dir: &Path) -> PathBuf {
    if dir.exists() {
        return dir.to_path_buf();
    }
    let Ok((parent, name)) = split_dir(dir) else {
        return dir.to_path_buf();
    };
    siblings(&parent, &name, "old")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// Whether a save of the checkpoint `dir` is under way or was interrupted (a sibling
/// `DIR.tmp-*` or `DIR.old-*` exists).
pub(crate) fn being_saved(dir: &Path) -> bool {
    let Ok((parent, name)) = split_dir(dir) else {
        return false;
    };
    !siblings(&parent, &name, "tmp").is_empty() || !siblings(&parent, &name, "old").is_empty()
}

/// Before saving, puts back a checkpoint that an interrupted save had moved aside, so the swap
/// below always starts from a consistent state.
fn recover(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let found = resolve(dir);
    if found != dir {
        fs::rename(&found, dir).map_err(|e| Error::io(&found, e))?;
    }
    Ok(())
}

/// Removes leftovers of interrupted saves (single writer assumed, so none is in progress).
fn remove_stale_siblings(parent: &Path, name: &str) {
    for tag in ["tmp", "old"] {
        for p in siblings(parent, name, tag) {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Writes a file and fsyncs it, so a rename of its directory never exposes partial content.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

fn write_json(path: &Path, value: &(impl Serialize + ?Sized)) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| Error::io(path, e.into()))?;
    text.push(b'\n');
    write_synced(path, &text)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        msg: e.to_string(),
    })
}

/// Makes renames and creations inside `dir` durable. Directories cannot be opened for syncing
/// on every platform (Windows), so this is Unix-only.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Param;
    use serde::{Deserialize, Serializer};

    /// A two-parameter module standing in for a real model.
    struct Tiny {
        w: Param,
        b: Param,
    }

    impl Tiny {
        fn new(rows: usize, fill: f32) -> Tiny {
            let w: Vec<f32> = (0..rows * 3).map(|i| fill + i as f32 * 0.5).collect();
            Tiny {
                w: Param::new("enc.weight", Tensor::from_vec(&[rows, 3], w).unwrap()),
                b: Param::new("enc.bias", Tensor::full(&[rows], -fill)),
            }
        }
    }

    impl Module for Tiny {
        fn params(&self) -> Vec<&Param> {
            vec![&self.w, &self.b]
        }
        fn params_mut(&mut self) -> Vec<&mut Param> {
            vec![&mut self.w, &mut self.b]
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Config {
        hidden: usize,
        cell: String,
    }

    /// A config whose serialization fails: injects an error in the middle of a save.
    struct Failing;
    impl Serialize for Failing {
        fn serialize<S: Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("injected failure"))
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("recur-ckpt-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn vocab(words: &[&str]) -> Vocab {
        Vocab::from_sequences([words.to_vec()], 1)
    }

    fn config(hidden: usize) -> Config {
        Config {
            hidden,
            cell: "lstm".into(),
        }
    }

    fn entries(parent: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn round_trip() {
        let root = temp("rt");
        let dir = root.join("ckpt");
        let model = Tiny::new(2, 1.0);
        let (src, tgt) = (vocab(&["a", "b"]), vocab(&["x"]));
        let state = TrainingState {
            tensors: vec![("exp_avg.enc.bias".into(), Tensor::full(&[2], 0.25))],
            meta: serde_json::json!({"step": 7, "epoch": 1, "best": 0.5, "rng": [1, 2]}),
        };
        Checkpoint::save(
            &dir,
            &model,
            &config(8),
            &[("src", &src), ("tgt", &tgt)],
            Some(&state),
        )
        .unwrap();

        let mut loaded = Tiny::new(2, 9.0);
        Checkpoint::load_model(&dir, &mut loaded).unwrap();
        assert_eq!(loaded.w.value, model.w.value);
        assert_eq!(loaded.b.value, model.b.value);
        assert_eq!(Checkpoint::load_config::<Config>(&dir).unwrap(), config(8));
        assert_eq!(Checkpoint::load_vocab(&dir, "src").unwrap(), src);
        assert_eq!(Checkpoint::load_vocab(&dir, "tgt").unwrap(), tgt);
        assert_eq!(Checkpoint::load_state(&dir).unwrap(), Some(state));
        assert!(dir.join("src_vocab.json").is_file());

        // The raw file holds exactly the state_dict names, in f32.
        let raw = load_tensors(dir.join(MODEL_FILE)).unwrap();
        let names: Vec<&str> = raw.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["enc.bias", "enc.weight"]);

        // Saving again replaces, without a training state this time, and leaves no siblings.
        Checkpoint::save(&dir, &Tiny::new(2, 3.0), &config(4), &[], None).unwrap();
        assert_eq!(Checkpoint::load_state(&dir).unwrap(), None);
        assert_eq!(Checkpoint::load_config::<Config>(&dir).unwrap().hidden, 4);
        assert_eq!(entries(&root), ["ckpt"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn mismatches_are_all_listed() {
        let root = temp("mm");
        let file = root.join("m.safetensors");
        let w = Tensor::zeros(&[3, 2]);
        let extra = Tensor::zeros(&[1]);
        save_tensors(&file, &[("enc.weight", &w), ("dec.extra", &extra)]).unwrap();

        let mut model = Tiny::new(2, 1.0);
        let before = model.w.value.clone();
        let err = load_params_from(&file, &mut model).unwrap_err();
        assert!(matches!(&err, Error::Tensor { name, .. } if name == "enc.weight"));
        let msg = err.to_string();
        assert!(msg.contains("m.safetensors"), "{msg}");
        assert!(msg.contains("missing tensors [enc.bias]"), "{msg}");
        assert!(msg.contains("unexpected tensors [dec.extra]"), "{msg}");
        assert!(
            msg.contains("enc.weight: expected (2, 3), got (3, 2)"),
            "{msg}"
        );
        // All or nothing: a failed load leaves the model as it was.
        assert_eq!(model.w.value, before);

        // Only extras: still an error, naming the extra tensor.
        let b = Tensor::zeros(&[2]);
        let w = Tensor::zeros(&[2, 3]);
        save_tensors(&file, &[("enc.weight", &w), ("enc.bias", &b), ("x", &b)]).unwrap();
        let err = load_params_from(&file, &mut model).unwrap_err();
        assert!(
            matches!(&err, Error::Tensor { name, .. } if name == "x"),
            "{err}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn non_f32_and_duplicates_are_rejected() {
        let root = temp("dt");
        let file = root.join("f64.safetensors");
        let data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F64, vec![2], &data).unwrap();
        let bytes = safetensors::tensor::serialize([("enc.bias", view)], &None).unwrap();
        fs::write(&file, bytes).unwrap();
        let msg = load_tensors(&file).unwrap_err().to_string();
        assert!(
            msg.contains("f64.safetensors") && msg.contains("F64"),
            "{msg}"
        );

        let t = Tensor::zeros(&[1]);
        let err = save_tensors(root.join("d.safetensors"), &[("a", &t), ("a", &t)]).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_and_corrupt_files_name_the_file() {
        let root = temp("mf");
        let mut model = Tiny::new(2, 1.0);
        let nowhere = root.join("nowhere");
        let err = Checkpoint::load_model(&nowhere, &mut model).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(
            err.to_string().contains("nowhere/model.safetensors"),
            "{err}"
        );

        let dir = root.join("ckpt");
        Checkpoint::save(&dir, &model, &config(1), &[("src", &vocab(&["a"]))], None).unwrap();
        fs::write(dir.join(MODEL_FILE), b"not a safetensors file").unwrap();
        let err = Checkpoint::load_model(&dir, &mut model).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }));
        assert!(err.to_string().contains("model.safetensors"), "{err}");

        fs::write(dir.join(CONFIG_FILE), b"{\"hidden\": ").unwrap();
        let err = Checkpoint::load_config::<Config>(&dir).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");

        let err = Checkpoint::load_vocab(&dir, "tgt").unwrap_err();
        assert!(err.to_string().contains("tgt_vocab.json"), "{err}");
        assert!(Checkpoint::load_vocab(&dir, "../x").is_err());

        // Half a training state is an error naming the missing half.
        fs::write(dir.join(STATE_META_FILE), b"{}").unwrap();
        let err = Checkpoint::load_state(&dir).unwrap_err();
        assert!(err.to_string().contains(STATE_TENSORS_FILE), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn failed_save_keeps_previous_checkpoint() {
        let root = temp("at");
        let dir = root.join("ckpt");
        let good = Tiny::new(2, 1.0);
        Checkpoint::save(&dir, &good, &config(8), &[("src", &vocab(&["a"]))], None).unwrap();

        // The config fails after model.safetensors has already been written to the temp dir.
        let err = Checkpoint::save(&dir, &Tiny::new(2, 5.0), &Failing, &[], None).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        let mut loaded = Tiny::new(2, 0.0);
        Checkpoint::load_model(&dir, &mut loaded).unwrap();
        assert_eq!(loaded.w.value, good.w.value);
        assert_eq!(Checkpoint::load_config::<Config>(&dir).unwrap(), config(8));
        assert!(Checkpoint::load_vocab(&dir, "src").is_ok());
        assert_eq!(entries(&root), ["ckpt"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn killed_between_renames_recovers() {
        let root = temp("kill");
        let dir = root.join("ckpt");
        let good = Tiny::new(2, 1.0);
        Checkpoint::save(&dir, &good, &config(8), &[], None).unwrap();

        // State after a kill between `DIR → DIR.old` and `DIR.tmp → DIR`, where the dead
        // process's temp dir is also only half written.
        fs::rename(&dir, root.join("ckpt.old-4242")).unwrap();
        fs::create_dir(root.join("ckpt.tmp-4242")).unwrap();
        fs::write(root.join("ckpt.tmp-4242").join(CONFIG_FILE), b"{").unwrap();

        let mut loaded = Tiny::new(2, 0.0);
        Checkpoint::load_model(&dir, &mut loaded).unwrap();
        assert_eq!(loaded.w.value, good.w.value);
        assert_eq!(Checkpoint::load_config::<Config>(&dir).unwrap(), config(8));

        // A failed save first restores the previous checkpoint to its place...
        assert!(Checkpoint::save(&dir, &good, &Failing, &[], None).is_err());
        assert!(dir.join(MODEL_FILE).is_file());
        // ...and a successful one clears the leftovers.
        Checkpoint::save(&dir, &Tiny::new(2, 2.0), &config(3), &[], None).unwrap();
        assert_eq!(entries(&root), ["ckpt"]);
        assert_eq!(Checkpoint::load_config::<Config>(&dir).unwrap(), config(3));
        fs::remove_dir_all(&root).unwrap();
    }
}
