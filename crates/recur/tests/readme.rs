//! The README's library example is `examples/readme.rs` (which CI compiles and runs): the code
//! block under "## Library" must be that file's `main`, so the README never shows code that
//! does not build.

#[test]
fn readme_library_example_is_the_compiled_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/readme.rs"))
            .unwrap();
    let library = &readme[readme.find("\n## Library").expect("a Library section")..];
    let start = library.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &library[start..start + library[start..].find("```").unwrap()];
    let main = &example[example.find("fn main()").expect("a main")..];
    assert_eq!(block.trim_end(), main.trim_end());
}
