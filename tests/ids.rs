//! Task IDs and prefixes (SPEC §5).

use agent_backlog::{NewTask, Store};

fn store() -> Store {
    Store::open_in_memory().unwrap()
}

fn create(s: &Store, agent: &str) -> String {
    s.create_task(agent, NewTask::new("t")).unwrap().id
}

#[test]
fn zero_padding_and_beyond_999() {
    let s = store();
    let batch: Vec<_> = (0..1000).map(|i| NewTask::new(format!("t{i}"))).collect();
    let list = s.create_tasks("marketing-lead", batch).unwrap();
    assert_eq!(list.tasks[0].id, "MKT-001");
    assert_eq!(list.tasks[6].id, "MKT-007");
    assert_eq!(list.tasks[998].id, "MKT-999");
    assert_eq!(list.tasks[999].id, "MKT-1000");
    assert_eq!(create(&s, "marketing-lead"), "MKT-1001");
    assert!(s.get_task("marketing-lead", "MKT-1000").is_ok());
}

#[test]
fn deleted_numbers_are_never_reused() {
    let s = store();
    assert_eq!(create(&s, "marketing-lead"), "MKT-001");
    assert_eq!(create(&s, "marketing-lead"), "MKT-002");
    s.delete_task("marketing-lead", "MKT-002").unwrap();
    s.delete_task("marketing-lead", "MKT-001").unwrap();
    assert_eq!(create(&s, "marketing-lead"), "MKT-003");
}

#[test]
fn counters_are_per_agent() {
    let s = store();
    assert_eq!(create(&s, "marketing-lead"), "MKT-001");
    assert_eq!(create(&s, "support-bot"), "SUP-001");
    assert_eq!(create(&s, "marketing-lead"), "MKT-002");
    assert_eq!(create(&s, "support-bot"), "SUP-002");
}

#[test]
fn derived_prefix_collisions_take_the_next_free_number() {
    let s = store();
    assert_eq!(create(&s, "support-bot"), "SUP-001");
    assert_eq!(create(&s, "supply-chain"), "SUP2-001");
    assert_eq!(create(&s, "super-agent"), "SUP3-001");
    assert_eq!(create(&s, "support-bot"), "SUP-002");
    // an explicit prefix that looks like a derived one is respected
    s.set_prefix("x-agent", "MKT2").unwrap();
    assert_eq!(create(&s, "marketing-lead"), "MKT-001");
    assert_eq!(create(&s, "marketing-ops"), "MKT3-001");
    assert_eq!(create(&s, "x-agent"), "MKT2-001");
}

#[test]
fn derivation_cases() {
    let s = store();
    let cases = [
        ("marketingLead", "MKT"),
        ("ProductOwner", "PRD"),
        ("qa-bot", "QAB"),
        ("x", "X"),
        ("HumanReview", "HR"),
        ("information.desk", "IT"),
        ("quality_gate", "QA"),
        ("dataPipeline", "DAT"),
    ];
    for (agent, prefix) in cases {
        assert_eq!(create(&s, agent), format!("{prefix}-001"), "{agent}");
    }
}

#[test]
fn agent_ids_are_case_sensitive() {
    let s = store();
    assert_eq!(create(&s, "Support-Bot"), "SUP-001");
    assert_eq!(create(&s, "support-bot"), "SUP2-001");
    assert_eq!(s.summary("Support-Bot").unwrap().total, 1);
}

#[test]
fn set_prefix_rules() {
    let s = store();
    let set = s.set_prefix("growth", "GRW").unwrap();
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        r#"{"agent_id":"growth","prefix":"GRW"}"#
    );
    // may change before the first task
    s.set_prefix("growth", "GROW").unwrap();
    assert_eq!(create(&s, "growth"), "GROW-001");
    // the same prefix again is accepted; another is a conflict
    assert!(s.set_prefix("growth", "GROW").is_ok());
    let err = s.set_prefix("growth", "GR").unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert!(err.to_string().contains("fixed at GROW"), "{err}");
    // held by another agent, explicitly or derived
    let err = s.set_prefix("other", "GROW").unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert!(err.to_string().contains("held by agent growth"), "{err}");
    create(&s, "support-bot");
    assert_eq!(s.set_prefix("other", "SUP").unwrap_err().code(), "conflict");
    // the freed prefix can be taken by another agent
    s.set_prefix("first", "AAA").unwrap();
    s.set_prefix("first", "BBB").unwrap();
    assert!(s.set_prefix("second", "AAA").is_ok());
    // deleting every task does not unfix the prefix
    s.delete_task("growth", "GROW-001").unwrap();
    assert_eq!(
        s.set_prefix("growth", "NEW").unwrap_err().code(),
        "conflict"
    );
    // invalid prefixes
    for bad in ["", "grw", "1AB", "ABCDEFGHI", "A-B", "A B"] {
        assert_eq!(
            s.set_prefix("third", bad).unwrap_err().code(),
            "invalid_argument",
            "{bad}"
        );
    }
    // a set prefix blocks derivation for others
    s.set_prefix("ops-team", "ENG").unwrap();
    assert_eq!(create(&s, "engineering"), "ENG2-001");
    assert_eq!(create(&s, "ops-team"), "ENG-001");
}

#[test]
fn a_task_id_names_one_task_in_the_store() {
    let s = store();
    create(&s, "support-bot");
    create(&s, "supply-chain");
    let all = s.query_tasks(agent_backlog::TaskQuery::new()).unwrap();
    let ids: Vec<_> = all.tasks.iter().map(|t| t.task.id.as_str()).collect();
    assert_eq!(ids, ["SUP-001", "SUP2-001"]);
    assert_eq!(
        s.get_task("supply-chain", "SUP-001").unwrap_err().code(),
        "not_found"
    );
}
