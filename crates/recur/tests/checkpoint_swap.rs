//! A reader loading a checkpoint while a writer keeps replacing it always gets one whole
//! version: never an error, never files of two versions.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use recur::data::{Tokenizer, Vocab};
use recur::transducer::{RunConfig, Transducer};

/// A tiny model whose target vocabulary has `extra` tokens: two versions differ in shapes, so a
/// mix of their files cannot load.
fn version(extra: usize) -> Transducer {
    let t = Tokenizer::Chars;
    let src = Vocab::from_sequences(["abc"].iter().map(|s| t.tokenize(s)), 1);
    let tgt_text: String = "vwxyz".chars().take(extra).collect();
    let tgt = Vocab::from_sequences([tgt_text.as_str()].iter().map(|s| t.tokenize(s)), 1);
    let mut cfg = RunConfig::default();
    (cfg.model.emb_dim, cfg.model.hidden_size, cfg.model.attn_dim) = (4, 8, 4);
    Transducer::new(cfg, src, tgt).unwrap()
}

#[test]
fn readers_during_checkpoint_swaps_see_whole_versions() {
    let dir = std::env::temp_dir().join(format!("recur-swap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("last");
    let (a, b) = (version(2), version(5));
    a.save(&path, None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let saves = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (done, saves, path) = (Arc::clone(&done), Arc::clone(&saves), path.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let v = if saves.load(Ordering::SeqCst) % 2 == 0 {
                    &b
                } else {
                    &a
                };
                v.save(&path, None).unwrap();
                saves.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Load until the writer has swapped 40 times (at most 60 s).
    let start = std::time::Instant::now();
    let mut sizes = std::collections::HashSet::new();
    let mut loads = 0;
    while saves.load(Ordering::SeqCst) < 40 && start.elapsed().as_secs() < 60 {
        let t = Transducer::load(&path).unwrap_or_else(|e| panic!("load {loads}: {e}"));
        sizes.insert(t.tgt_vocab.len());
        loads += 1;
    }
    done.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let saves = saves.load(Ordering::SeqCst);
    assert!(
        saves >= 40 && loads > saves,
        "{loads} loads during {saves} swaps"
    );
    assert!(sizes.iter().all(|s| [6, 9].contains(s)), "{sizes:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
