//! Messages a new user meets first: each names what is wrong and the path involved.

mod common;

use agent_backlog::Store;
use common::TempDir;

#[test]
fn a_directory_is_called_a_directory() {
    let dir = TempDir::new("messages-dir");
    let err = Store::open(dir.path())
        .err()
        .expect("a directory is no database");
    assert_eq!(err.code(), "storage");
    let message = err.to_string();
    assert!(message.contains("it is a directory"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("backlogs.db"), "{message}");
}

#[test]
fn a_file_that_is_not_sqlite_is_named() {
    let dir = TempDir::new("messages-text");
    let path = dir.file("notes.txt");
    std::fs::write(&path, "these are notes, not an SQLite database at all.....").unwrap();
    let err = Store::open(&path)
        .err()
        .expect("a text file is no database");
    assert_eq!(err.code(), "storage");
    let message = err.to_string();
    assert!(message.contains("not an SQLite database"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "these are notes, not an SQLite database at all.....",
        "the file was left as it was"
    );
}
