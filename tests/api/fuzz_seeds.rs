//! The fuzz targets' checks (`fuzz/src/checks.rs`, included as it is) over their corpus, the
//! inputs that once broke something (`fuzz/regressions/<target>/`), and seeded mutations of
//! them: a short fuzzing run on stable, in every test run. The long runs are
//! `cargo +nightly fuzz run <target>` (see the README).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// `checks.rs` names the protocol modules as its parent's `wechat`.
use fission::wechat;

#[path = "../../fuzz/src/checks.rs"]
mod checks;

/// Mutations tried per target; about a second in a debug build.
const MUTATIONS: usize = 20_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = read_dir(&dir);
    inputs.extend(read_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(target),
    ));
    assert!(!inputs.is_empty(), "no seeds in {}", dir.display());
    inputs
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(&p).expect("seed readable"))
        .collect()
}

/// A seed changed the way a fuzzer would: bytes flipped, inserted, removed, or spliced with
/// another seed.
fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=8) {
        let at = if data.is_empty() {
            0
        } else {
            rng.gen_range(0..data.len())
        };
        match rng.gen_range(0..5) {
            0 if !data.is_empty() => data[at] = rng.gen(),
            1 => data.insert(
                at,
                *b"<>/[]!&;=%\0\xff"
                    .get(rng.gen_range(0..12))
                    .unwrap_or(&b'x'),
            ),
            2 if !data.is_empty() => {
                let end = (at + rng.gen_range(1..16)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let from = rng.gen_range(0..=other.len());
                data.splice(at..at, other[from..].iter().take(64).copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

fn run(target: &str, check: fn(&[u8])) {
    let seeds = corpus(target);
    for seed in &seeds {
        check(seed);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed_f155);
    for _ in 0..MUTATIONS {
        check(&mutate(&mut rng, &seeds));
    }
}

#[test]
fn push_xml_corpus_and_mutations() {
    run("push_xml", checks::push_xml_round_trips);
}

#[test]
fn decrypt_corpus_and_mutations() {
    run("decrypt", checks::decrypt_is_total);
}

#[test]
fn callback_query_corpus_and_mutations() {
    run("callback_query", checks::callback_query_is_total);
}
