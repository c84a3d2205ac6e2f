//! Models by name: the shipped pretrained models, the user's own model directories and training
//! runs, found the same way by every front end.
//!
//! [`resolve`] turns what a user typed (`--model X`, `recur.load("X")`) into a [`ModelSource`]:
//!
//! 1. `X` is an existing directory: a model directory (it has `config.json`), or a training
//!    run (`recur train --out X`: it has `best/`), which means `X/best`.
//! 2. `X` is a plain name (no path separator): the first directory `NAME` with a `config.json`
//!    in the folders of `$RECUR_MODELS` (separated like `PATH`), then in the user's folder
//!    (`$XDG_DATA_HOME/recur/models`, else `~/.local/share/recur/models`), then the models
//!    compiled into the library (feature `bundled-models`: `hi-translit`, `en-g2p`).
//! 3. Anything else is an error that lists the names it knows.
//!
//! A model of the user's shadows a bundled one of the same name.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::checkpoint::{CONFIG_FILE, MODEL_FILE};
use crate::error::{Error, Result};

/// The environment variable with extra model folders (each holds one directory per model).
pub const MODELS_ENV: &str = "RECUR_MODELS";
/// A model directory's card, whose first line gives the summary [`available`] shows.
pub const CARD_FILE: &str = "MODEL_CARD.md";

/// A model compiled into the library: the files of its model directory.
#[derive(Debug)]
pub struct BundledModel {
    /// Its name, e.g. `hi-translit`.
    pub name: &'static str,
    /// `config.json`.
    pub config: &'static [u8],
    /// `src_vocab.json`.
    pub src_vocab: &'static [u8],
    /// `tgt_vocab.json`.
    pub tgt_vocab: &'static [u8],
    /// `model.safetensors`.
    pub weights: &'static [u8],
    /// `MODEL_CARD.md`.
    pub card: &'static str,
    /// The lexicon file its config's `[text] lexicon` names (see [`crate::lexicon`]).
    pub lexicon: Option<&'static [u8]>,
    /// The ensemble members its `config.json` lists (`"members"`), each the files of the
    /// subdirectory of that name, named `NAME/MEMBER` (their `card` is empty). Empty for one
    /// model.
    pub members: &'static [BundledModel],
    /// The word-frequency file its config names (`[decode] word_freq`), if any.
    pub word_freq: Option<&'static [u8]>,
}

/// Where a model's files are.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A model directory on disk.
    Dir(PathBuf),
    /// A model compiled into the library.
    Bundled(&'static BundledModel),
}

impl ModelSource {
    /// Where it is, for messages: the directory, or `bundled:NAME`.
    pub fn location(&self) -> String {
        match self {
            ModelSource::Dir(d) => d.display().to_string(),
            ModelSource::Bundled(b) => format!("bundled:{}", b.name),
        }
    }

    /// The four files of the model directory, read from disk or borrowed from the binary.
    pub fn files(&self) -> Result<ModelFiles<'static>> {
        match self {
            ModelSource::Bundled(b) => Ok(ModelFiles {
                origin: PathBuf::from(format!("bundled:{}", b.name)),
                config: Cow::Borrowed(b.config),
                src_vocab: Cow::Borrowed(b.src_vocab),
                tgt_vocab: Cow::Borrowed(b.tgt_vocab),
                weights: Cow::Borrowed(b.weights),
                lexicon: b.lexicon.map(Cow::Borrowed),
                word_freq: b.word_freq.map(Cow::Borrowed),
            }),
            ModelSource::Dir(dir) => read_consistent(dir),
        }
    }

    /// The ensemble member `name` of this model (see [`crate::transducer`]): the subdirectory
    /// `name` of a model directory, or the bundled member of that name. `name` must be one
    /// plain path component.
    pub fn member(&self, name: &str) -> Result<ModelSource> {
        let bad = |msg: String| Error::Parse {
            path: PathBuf::from(self.location()).join(CONFIG_FILE),
            line: None,
            msg,
        };
        if plain_name(Path::new(name)).is_none() {
            let msg = format!("ensemble member {name:?}: expected a subdirectory name");
            return Err(bad(msg));
        }
        match self {
            ModelSource::Dir(dir) => Ok(ModelSource::Dir(dir.join(name))),
            ModelSource::Bundled(b) => {
                let full = format!("{}/{name}", b.name);
                match b.members.iter().find(|m| m.name == full) {
                    Some(m) => Ok(ModelSource::Bundled(m)),
                    None => Err(bad(format!(
                        "ensemble member {name:?} was not compiled in (list it in the \
                         bundled! macro of models.rs)"
                    ))),
                }
            }
        }
    }
}

/// Reads the four files of the checkpoint directory `dir` as one version: a writer swapping in
/// a new checkpoint (rename `DIR` aside, rename the new one in, delete the old) could otherwise
/// hand a reader files of two versions, or none. The directory's identity is checked before
/// and after reading, and the read is retried (a few times, briefly) when it changed.
fn read_consistent(dir: &Path) -> Result<ModelFiles<'static>> {
    const TRIES: usize = 20;
    let mut last_err = None;
    for attempt in 0..TRIES {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(5 * attempt as u64));
        }
        // A save killed between its two renames leaves `DIR.old-<pid>`: read that.
        let found = crate::checkpoint::resolve(dir);
        let before = identity(&found);
        let result = read_files(&found);
        if before.is_some() && identity(&found) == before {
            // The same directory throughout: whatever the read gave is the answer.
            return result;
        }
        last_err = result.err().or(last_err);
    }
    Err(last_err.unwrap_or_else(|| {
        Error::io(
            dir,
            std::io::Error::other("kept changing while being read (a writer is saving it)"),
        )
    }))
}

/// The identity of a directory (device and inode on Unix), which a rename of another
/// directory onto its path changes.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(dir).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    meta.modified().ok().map(|t| {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (d.as_secs(), u64::from(d.subsec_nanos()))
    })
}

fn read_files(dir: &Path) -> Result<ModelFiles<'static>> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p)
            .map(Cow::Owned)
            .map_err(|e| Error::io(p, e))
    };
    let config = read(CONFIG_FILE)?;
    let lexicon = match lexicon_name(&config) {
        Some(name) => {
            let name = checked_file_name(&name, &dir.join(CONFIG_FILE))?;
            Some(read_lexicon(&dir.join(name))?)
        }
        None => None,
    };
    let word_freq = match word_freq_name(&config, dir)? {
        Some(name) => Some(read(&name)?),
        None => None,
    };
    Ok(ModelFiles {
        config,
        src_vocab: read("src_vocab.json")?,
        tgt_vocab: read("tgt_vocab.json")?,
        weights: read(MODEL_FILE)?,
        lexicon,
        word_freq,
        origin: dir.to_path_buf(),
    })
}

/// The lexicon file a model's `config.json` names (`text.lexicon`), if any. A config that does
/// not parse names none here: its error is reported when the model is built from it.
pub fn lexicon_name(config: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(config).ok()?;
    value
        .get("text")?
        .get("lexicon")?
        .as_str()
        .map(str::to_string)
}

/// `name` when it is a plain file name (so that a config reads nothing outside its model
/// directory), else an error about `config`.
pub fn checked_file_name<'n>(name: &'n str, config: &Path) -> Result<&'n str> {
    let plain = !name.is_empty()
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && Path::new(name).components().count() == 1;
    if plain {
        return Ok(name);
    }
    Err(Error::Parse {
        path: config.to_path_buf(),
        line: None,
        msg: format!("text.lexicon: expected a file name in the model directory, got {name:?}"),
    })
}

/// A lexicon file's bytes, refusing one larger than [`crate::lexicon::MAX_LEXICON_BYTES`].
fn read_lexicon(path: &Path) -> Result<Cow<'static, [u8]>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(crate::lexicon::MAX_LEXICON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(Cow::Owned(bytes))
}

/// The word-frequency file that a config names (`[decode] word_freq`), read ahead of the full
/// parse so that the file is read with the others; a config that is not valid JSON names none
/// here (the full parse reports it). The name must be a plain file name in the directory.
fn word_freq_name(config: &[u8], dir: &Path) -> Result<Option<String>> {
    #[derive(serde::Deserialize, Default)]
    struct Config {
        #[serde(default)]
        decode: Decode,
    }
    #[derive(serde::Deserialize, Default)]
    struct Decode {
        #[serde(default)]
        word_freq: Option<String>,
    }
    let parsed: Config = serde_json::from_slice(config).unwrap_or_default();
    let Some(name) = parsed.decode.word_freq else {
        return Ok(None);
    };
    if plain_name(Path::new(&name)).is_none() {
        return Err(Error::Parse {
            path: dir.join(CONFIG_FILE),
            line: None,
            msg: format!(
                "[decode] word_freq: expected a file name in the model directory, got {name:?}"
            ),
        });
    }
    Ok(Some(name))
}

/// The files of a model directory as bytes; `origin` (a directory or `bundled:NAME`) names
/// them in error messages.
#[derive(Debug, Clone)]
pub struct ModelFiles<'a> {
    /// The directory they came from, or `bundled:NAME`.
    pub origin: PathBuf,
    /// `config.json`.
    pub config: Cow<'a, [u8]>,
    /// `src_vocab.json`.
    pub src_vocab: Cow<'a, [u8]>,
    /// `tgt_vocab.json`.
    pub tgt_vocab: Cow<'a, [u8]>,
    /// `model.safetensors`.
    pub weights: Cow<'a, [u8]>,
    /// The lexicon file its config's `[text] lexicon` names, when it names one.
    pub lexicon: Option<Cow<'a, [u8]>>,
    /// The word-frequency file `[decode] word_freq` names, if it names one.
    pub word_freq: Option<Cow<'a, [u8]>>,
}

/// A model [`available`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The name to load it by.
    pub name: String,
    /// One line from its model card (empty without a card).
    pub summary: String,
    /// Where it is: a directory, or `bundled:NAME`.
    pub location: String,
}

/// `bundled!("NAME")`, with `lexicon = "FILE"` and `word_freq = "FILE"` for a model whose config
/// names those files, and `members: ["M1", ...]` for one whose config.json lists ensemble
/// members (subdirectories `models/NAME/M1/`, ...). Tests check that they agree.
#[cfg(feature = "bundled-models")]
macro_rules! bundled {
    // An optional file of the model directory: absent, or compiled in.
    (@optional $dir:expr) => {
        None
    };
    (@optional $dir:expr, $file:literal) => {
        Some(include_bytes!(concat!("../../../models/", $dir, "/", $file)) as &[u8])
    };
    (
        $name:literal
        $(, lexicon = $lexicon:literal)?
        $(, word_freq = $word_freq:literal)?
        $(, members: [$($member:literal),* $(,)?])?
    ) => {
        BundledModel {
            card: include_str!(concat!("../../../models/", $name, "/MODEL_CARD.md")),
            lexicon: bundled!(@optional $name $(, $lexicon)?),
            word_freq: bundled!(@optional $name $(, $word_freq)?),
            members: &[$($(bundled!(
                @files concat!($name, "/", $member),
                concat!($name, "/", $member),
                &[]
            )),*)?],
            ..bundled!(@files $name, $name, &[])
        }
    };
    (@files $name:expr, $dir:expr, $members:expr) => {
        BundledModel {
            name: $name,
            config: include_bytes!(concat!("../../../models/", $dir, "/config.json")),
            src_vocab: include_bytes!(concat!("../../../models/", $dir, "/src_vocab.json")),
            tgt_vocab: include_bytes!(concat!("../../../models/", $dir, "/tgt_vocab.json")),
            weights: include_bytes!(concat!("../../../models/", $dir, "/model.safetensors")),
            card: "",
            lexicon: None,
            word_freq: None,
            members: $members,
        }
    };
}

/// The models compiled into this build (none without the `bundled-models` feature).
#[cfg(feature = "bundled-models")]
pub static BUNDLED: &[BundledModel] = &[
    bundled!("hi-translit", word_freq = "wordfreq.tsv", members: ["seed-3", "seed-4"]),
    bundled!("en-g2p", lexicon = "lexicon.tsv", members: ["seed-2", "seed-3", "seed-4"]),
];
/// The models compiled into this build (none without the `bundled-models` feature).
#[cfg(not(feature = "bundled-models"))]
pub static BUNDLED: &[BundledModel] = &[];

/// The folders searched for named models, in order: `$RECUR_MODELS`, then the user's folder.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(MODELS_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data_home {
        dirs.push(d.join("recur/models"));
    }
    dirs.retain(|d| !d.as_os_str().is_empty());
    dirs
}

/// Whether `dir` is a model directory.
fn is_model_dir(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file()
}

/// Finds the model `spec` names; see the [module docs](self) for the order.
pub fn resolve(spec: impl AsRef<Path>) -> Result<ModelSource> {
    let spec = spec.as_ref();
    // A checkpoint that a writer is swapping is missing for an instant (while a sibling
    // `NAME.tmp-*` or `NAME.old-*` exists): look again briefly before saying it is not there.
    for _ in 0..100 {
        if spec.is_dir() || !crate::checkpoint::being_saved(spec) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if spec.is_dir() {
        if !is_model_dir(spec) && spec.join("best").is_dir() {
            return Ok(ModelSource::Dir(spec.join("best")));
        }
        return Ok(ModelSource::Dir(spec.to_path_buf()));
    }
    if let Some(name) = plain_name(spec) {
        if let Some(dir) = search_dirs()
            .into_iter()
            .map(|d| d.join(name))
            .find(|d| is_model_dir(d))
        {
            return Ok(ModelSource::Dir(dir));
        }
        if let Some(b) = BUNDLED.iter().find(|b| b.name == name) {
            return Ok(ModelSource::Bundled(b));
        }
    }
    // A checkpoint whose save was interrupted exists only as `DIR.old-<pid>`.
    let recovered = crate::checkpoint::resolve(spec);
    if recovered != spec && is_model_dir(&recovered) {
        return Ok(ModelSource::Dir(spec.to_path_buf()));
    }
    let known: Vec<String> = available().into_iter().map(|m| m.name).collect();
    Err(Error::Parse {
        path: spec.to_path_buf(),
        line: None,
        msg: format!(
            "no such model directory, and no model of that name (known: {}; add your own as \
             directories in ${MODELS_ENV})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    })
}

/// `spec` as a model name: one plain path component.
fn plain_name(spec: &Path) -> Option<&str> {
    let name = spec.to_str()?;
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && spec.components().count() == 1;
    plain.then_some(name)
}

/// Every model that a name can load, first the user's, then the bundled ones, each name once
/// (sorted by name within a folder).
pub fn available() -> Vec<ModelInfo> {
    let mut out: Vec<ModelInfo> = Vec::new();
    for dir in search_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<ModelInfo> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| is_model_dir(p))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                let card = std::fs::read_to_string(p.join(CARD_FILE)).unwrap_or_default();
                Some(ModelInfo {
                    summary: summary(&name, &card),
                    location: p.display().to_string(),
                    name,
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(found);
    }
    out.extend(BUNDLED.iter().map(|b| ModelInfo {
        name: b.name.to_string(),
        summary: summary(b.name, b.card),
        location: format!("bundled:{}", b.name),
    }));
    let mut seen = std::collections::HashSet::new();
    out.retain(|m| seen.insert(m.name.clone()));
    out
}

/// The card's first line without its `# ` and a leading `NAME: `.
fn summary(name: &str, card: &str) -> String {
    let first = card.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = first.trim_start_matches('#').trim();
    line.strip_prefix(&format!("{name}:"))
        .unwrap_or(line)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_cards_title_without_the_name() {
        let card = "# hi-translit: romanized Hindi → Devanagari\n\nmore";
        assert_eq!(summary("hi-translit", card), "romanized Hindi → Devanagari");
        assert_eq!(summary("x", "\n# Something else\n"), "Something else");
        assert_eq!(summary("x", ""), "");
    }

    #[test]
    fn plain_names_exclude_paths() {
        assert_eq!(plain_name(Path::new("hi-translit")), Some("hi-translit"));
        for p in ["a/b", "./a", "..", "/abs", ""] {
            assert_eq!(plain_name(Path::new(p)), None, "{p}");
        }
    }

    static MEMBER: BundledModel = BundledModel {
        name: "ens/seed-2",
        config: b"{}",
        src_vocab: b"",
        tgt_vocab: b"",
        weights: b"",
        card: "",
        lexicon: None,
        word_freq: None,
        members: &[],
    };
    static WITH_MEMBER: BundledModel = BundledModel {
        name: "ens",
        members: std::slice::from_ref(&MEMBER),
        ..MEMBER
    };

    #[test]
    fn members_are_subdirectories_or_bundled_members() {
        let dir = ModelSource::Dir(PathBuf::from("models/ens"));
        match dir.member("seed-2").unwrap() {
            ModelSource::Dir(d) => assert_eq!(d, Path::new("models/ens/seed-2")),
            other => panic!("{other:?}"),
        }
        let bundled = ModelSource::Bundled(&WITH_MEMBER);
        let m = bundled.member("seed-2").unwrap();
        assert_eq!(m.location(), "bundled:ens/seed-2");
        let e = bundled.member("seed-3").unwrap_err().to_string();
        assert!(e.contains("not compiled in"), "{e}");
        for bad in ["../x", "a/b", ""] {
            assert!(dir.member(bad).is_err(), "{bad}");
        }
    }

    /// Every member a bundled model's config lists is compiled in with it.
    #[test]
    fn bundled_models_carry_the_members_they_list() {
        for b in BUNDLED {
            let config: serde_json::Value = serde_json::from_slice(b.config).unwrap();
            let listed = config["members"].as_array().cloned().unwrap_or_default();
            assert_eq!(listed.len(), b.members.len(), "{}", b.name);
            for name in listed {
                let name = name.as_str().unwrap();
                ModelSource::Bundled(b).member(name).unwrap();
            }
        }
    }

    #[test]
    fn bundled_word_freq_files_are_the_ones_the_configs_name() {
        for b in BUNDLED {
            let named = word_freq_name(b.config, Path::new(b.name)).unwrap();
            assert_eq!(named.is_some(), b.word_freq.is_some(), "{}", b.name);
        }
    }

    #[test]
    fn a_word_freq_name_must_stay_in_the_model_directory() {
        let config = |name: &str| format!(r#"{{"decode": {{"word_freq": "{name}"}}}}"#);
        let dir = Path::new("m");
        assert_eq!(
            word_freq_name(config("f.tsv").as_bytes(), dir).unwrap(),
            Some("f.tsv".to_string())
        );
        for bad in ["../f.tsv", "/etc/passwd", "a/b.tsv", ""] {
            assert!(
                word_freq_name(config(bad).as_bytes(), dir).is_err(),
                "{bad}"
            );
        }
        assert_eq!(word_freq_name(b"{}", dir).unwrap(), None);
        assert_eq!(word_freq_name(b"not json", dir).unwrap(), None);
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = resolve("no-such-model-anywhere").unwrap_err().to_string();
        assert!(e.contains("no such model directory"), "{e}");
        for b in BUNDLED {
            assert!(e.contains(b.name), "{e}");
        }
    }
}
