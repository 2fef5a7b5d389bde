//! A store opened by a relative path keeps using that file after the process changes
//! directory (SPEC §8): connections opened later (readers, the checkpoint thread) use
//! the path resolved at open, and no second, empty file appears in the new directory.
//!
//! The only test of its binary, because it changes the process's working directory.

mod common;

use agent_backlog::{ListQuery, NewTask, Store};
use common::TempDir;

#[test]
fn a_relative_path_survives_a_change_of_directory() {
    let a = TempDir::new("relative-a");
    let b = TempDir::new("relative-b");
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(a.path()).unwrap();
    let store = Store::open("x.db").unwrap();
    store.create_task("mover", NewTask::new("before")).unwrap();
    std::env::set_current_dir(b.path()).unwrap();
    // Enough writes to ask the checkpoint thread for a checkpoint, and reads that open
    // reader connections, all after the change of directory.
    for i in 0..3_000 {
        store
            .create_task(
                "mover",
                NewTask::new(format!("after {i}")).description("x".repeat(400)),
            )
            .unwrap();
        if i % 500 == 0 {
            assert_eq!(
                store
                    .list_tasks("mover", ListQuery::new().limit(1))
                    .unwrap()
                    .total,
                i + 2
            );
        }
    }
    assert_eq!(store.get_task("mover", "MOV-001").unwrap().title, "before");
    store.close().unwrap();
    std::env::set_current_dir(before).unwrap();
    assert!(
        !b.file("x.db").exists(),
        "a second x.db was created after chdir"
    );
    assert!(!b.file("x.db-wal").exists());
    let reopened = Store::open(a.file("x.db")).unwrap();
    assert_eq!(reopened.summary("mover").unwrap().total, 3_001);
}
