//! Access tokens (`agent_backlog::auth`): what a secret proves, what a token may call,
//! and what the store keeps. The server's side is tested through HTTP in
//! tests/python/test_auth.py.

mod common;

use agent_backlog::ops::OPERATIONS;
use agent_backlog::{Access, ErrorCode, Store, TokenRequest};
use common::TempDir;
use serde_json::json;

fn op(name: &str) -> &'static agent_backlog::ops::Operation {
    OPERATIONS.iter().find(|op| op.name == name).unwrap()
}

#[test]
fn a_secret_proves_its_token_until_revoked_or_expired() {
    let dir = TempDir::new("tokens");
    let store = Store::open(dir.file("t.db")).unwrap();
    let issued = store
        .create_token(TokenRequest::agent("support-bot").expires_days(30))
        .unwrap();
    assert!(issued.secret.starts_with("abt_1_") && issued.secret.len() == 6 + 64);
    assert_eq!(
        store.authenticate(&issued.secret).unwrap(),
        Access::Granted(issued.token.clone())
    );
    // One character off, another ID, or no token's form at all: unknown.
    let mut wrong = issued.secret.clone();
    wrong.replace_range(
        wrong.len() - 1..,
        if wrong.ends_with('0') { "1" } else { "0" },
    );
    assert_eq!(store.authenticate(&wrong).unwrap(), Access::Unknown);
    assert_eq!(
        store
            .authenticate(&issued.secret.replacen("abt_1_", "abt_2_", 1))
            .unwrap(),
        Access::Unknown
    );
    assert_eq!(
        store.authenticate("Bearer nonsense").unwrap(),
        Access::Unknown
    );

    // Expired: its time moved into the past by hand.
    let conn = rusqlite::Connection::open(dir.file("t.db")).unwrap();
    conn.execute("UPDATE tokens SET expires = 1 WHERE id = 1", [])
        .unwrap();
    assert!(matches!(
        store.authenticate(&issued.secret).unwrap(),
        Access::Expired(_)
    ));

    let admin = store
        .create_token(TokenRequest::admin().name("ops-admin"))
        .unwrap();
    let revoked = store.revoke_token(admin.token.id).unwrap();
    assert!(revoked.revoked.is_some());
    // Revoking again keeps the first time.
    assert_eq!(store.revoke_token(admin.token.id).unwrap(), revoked);
    assert!(matches!(
        store.authenticate(&admin.secret).unwrap(),
        Access::Revoked(_)
    ));
    assert_eq!(
        store.revoke_token(99).unwrap_err().kind(),
        ErrorCode::NotFound
    );

    // The store keeps no secret: only the SHA-256 of each, and the file holds neither
    // secret's random part.
    use sha2::Digest;
    let kept: Vec<Vec<u8>> = conn
        .prepare("SELECT hash FROM tokens ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<Vec<u8>> = [&issued.secret, &admin.secret]
        .iter()
        .map(|secret| sha2::Sha256::digest(secret.as_bytes()).to_vec())
        .collect();
    assert_eq!(kept, expected);
    drop(conn);
    store.close().unwrap();
    let mut file = std::fs::read(dir.file("t.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.file("t.db-wal")) {
        file.extend(wal);
    }
    let text = String::from_utf8_lossy(&file);
    for secret in [&issued.secret, &admin.secret] {
        assert!(!text.contains(&secret[secret.rfind('_').unwrap() + 1..]));
    }
    let store = Store::open(dir.file("t.db")).unwrap();
    let listed = store.list_tokens().unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["support-bot-1", "ops-admin"]
    );
}

#[test]
fn bad_requests_are_refused_and_names_are_unique() {
    let store = Store::open_in_memory().unwrap();
    let refused = |request: TokenRequest| store.create_token(request).unwrap_err().kind();
    assert_eq!(refused(TokenRequest::default()), ErrorCode::InvalidArgument);
    assert_eq!(
        refused(TokenRequest {
            admin: true,
            ..TokenRequest::agent("x")
        }),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        refused(TokenRequest::agent("no spaces")),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        refused(TokenRequest::admin().name("a b")),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        refused(TokenRequest::admin().expires_days(0)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        refused(TokenRequest::admin().expires_days(3651)),
        ErrorCode::InvalidArgument
    );
    assert!(store.list_tokens().unwrap().is_empty());

    store
        .create_token(TokenRequest::admin().name("admin-2"))
        .unwrap();
    assert_eq!(
        refused(TokenRequest::agent("x").name("admin-2")),
        ErrorCode::Conflict
    );
    // A default name someone took already: the next free one.
    let second = store.create_token(TokenRequest::admin()).unwrap();
    assert_eq!(
        (second.token.id, second.token.name.as_str()),
        (2, "admin-2-2")
    );
}

#[test]
fn an_agents_token_may_call_only_on_its_backlog() {
    let store = Store::open_in_memory().unwrap();
    let mine = store
        .create_task("support-bot", agent_backlog::NewTask::new("a"))
        .unwrap();
    store
        .create_task("marketing-lead", agent_backlog::NewTask::new("b"))
        .unwrap();
    let token = store
        .create_token(TokenRequest::agent("support-bot"))
        .unwrap()
        .token;
    let admin = store.create_token(TokenRequest::admin()).unwrap().token;
    let own_lease = store
        .claim_lease("support-bot", "w", agent_backlog::LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease
        .token;
    let other_lease = store
        .claim_lease("marketing-lead", "w", agent_backlog::LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease
        .token;
    let cases = [
        ("list_tasks", json!({"agent_id": "support-bot"}), true),
        ("list_tasks", json!({"agent_id": "marketing-lead"}), false),
        (
            "get_task",
            json!({"agent_id": "support-bot", "task_id": mine.id}),
            true,
        ),
        ("query_tasks", json!({}), false),
        ("query_tasks", json!({"agent_id": "support-bot"}), true),
        ("events", json!({}), false),
        ("events", json!({"agent_id": "support-bot"}), true),
        ("list_agents", json!({}), false),
        ("prune_events", json!({"before": 1}), false),
        ("reap_expired", json!({}), false),
        ("reap_expired", json!({"agent_id": "support-bot"}), true),
        ("renew_lease", json!({"token": own_lease}), true),
        ("renew_lease", json!({"token": other_lease}), false),
        (
            "finish_lease",
            json!({"token": other_lease, "finish": {"status": "complete"}}),
            false,
        ),
        (
            "add_dependency",
            json!({"agent_id": "support-bot", "task_id": mine.id, "depends_on": "SUP-001"}),
            true,
        ),
        (
            "add_dependency",
            json!({"agent_id": "support-bot", "task_id": mine.id, "depends_on": "MKT-001"}),
            false,
        ),
        (
            "create_task",
            json!({"agent_id": "support-bot", "task": {"title": "x", "depends_on": ["MKT-001"]}}),
            false,
        ),
        (
            "create_task",
            json!({"agent_id": "support-bot", "task": {"title": "x", "depends_on": ["SUP-001"]}}),
            true,
        ),
        (
            "create_tasks",
            json!({"agent_id": "support-bot", "tasks": [{"title": "x", "depends_on": [0, "MKT-001"]}]}),
            false,
        ),
        (
            "create_tasks",
            json!({"agent_id": "support-bot", "tasks": [{"title": "x"}, {"title": "y", "depends_on": [0]}]}),
            true,
        ),
    ];
    for (name, request, allowed) in cases {
        assert_eq!(
            store.permits(&token, op(name), &request).unwrap(),
            allowed,
            "{name} {request}"
        );
        assert!(
            store.permits(&admin, op(name), &request).unwrap(),
            "admin {name}"
        );
    }
}
