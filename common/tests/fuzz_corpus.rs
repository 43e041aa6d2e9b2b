//! Replays the fuzz corpus (`fuzz/corpus/http/`: seeds plus what the fuzzer found
//! interesting) through the same property the fuzzer checks.

use std::path::Path;

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        let result = std::panic::catch_unwind(|| common::fuzzing::check(&data));
        assert!(
            result.is_ok(),
            "corpus input {} fails the property",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} corpus inputs in {}", dir.display());
}
