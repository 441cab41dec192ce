//! The config fuzz target's invariant over its committed corpus (bgpd/fuzz/corpus/config:
//! the example configs and every input the fuzzer found failing): parsing never panics
//! and every error is one line naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn every_corpus_input_parses_or_fails_in_one_line_naming_the_file() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/config");
    let mut inputs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        inputs += 1;
        if let Err(errors) = bgpd::config::Config::parse(text, "corpus.toml") {
            for error in errors.iter() {
                let line = error.to_string();
                assert!(
                    line.starts_with("corpus.toml"),
                    "{}: {line}",
                    path.display()
                );
                assert!(!line.contains('\n'), "{}: {line:?}", path.display());
            }
        }
    }
    assert!(inputs >= 5, "only {inputs} inputs in {dir}");
}
