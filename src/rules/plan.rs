//! The plan rules of SPEC §12–§13, as pure functions: what a create body's
//! `depends_on` may name, what makes two idempotent requests the same, and how a
//! refused cycle is reported.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::backend::NewRow;
use crate::error::{Error, Result};
use crate::plan::DependsOn;
use crate::rules::validate;

/// Checks a create body's `depends_on`: task IDs well formed, an item index only in a
/// batch (`item` is the body's own index there) and only naming an earlier item.
/// A dependency named twice counts once; the order of first mention is kept.
pub(crate) fn depends_on(item: Option<usize>, deps: Vec<DependsOn>) -> Result<Vec<DependsOn>> {
    if deps.len() > validate::MAX_DEPENDS_ON {
        return Err(Error::invalid(format!(
            "depends_on lists at most {} tasks, got {}",
            validate::MAX_DEPENDS_ON,
            deps.len()
        )));
    }
    let mut seen: HashSet<DependsOn> = HashSet::with_capacity(deps.len());
    let mut checked: Vec<DependsOn> = Vec::with_capacity(deps.len());
    for (k, dep) in deps.into_iter().enumerate() {
        match (&dep, item) {
            (DependsOn::Task(id), _) => validate::id_of(&format!("depends_on[{k}]"), id)?,
            (DependsOn::Item(_), None) => {
                return Err(Error::invalid(format!(
                    "depends_on[{k}] is an index, which names an earlier item of the same batch \
                     only inside create_tasks; give a task ID such as \"MKT-001\""
                )))
            }
            (DependsOn::Item(j), Some(i)) if *j >= i => {
                let earlier = match i {
                    0 => "the first item has no earlier item to depend on".to_owned(),
                    1 => "only 0, the first item, is earlier".to_owned(),
                    _ => format!("an earlier item is 0 to {}", i - 1),
                };
                return Err(Error::invalid(format!(
                    "depends_on[{k}] is {j}, but an index must name an earlier item of the batch: {earlier}"
                )));
            }
            (DependsOn::Item(_), Some(_)) => {}
        }
        if seen.insert(dep.clone()) {
            checked.push(dep);
        }
    }
    Ok(checked)
}

/// A task may not depend on itself.
pub(crate) fn not_itself(task_id: &str, depends_on: &str) -> Result<()> {
    if task_id == depends_on {
        return Err(Error::invalid(format!(
            "depends_on must name another task: {task_id} cannot depend on itself"
        )));
    }
    Ok(())
}

/// The error for an edge that would close a cycle: `path` runs from the task through
/// its new dependency back to the task (`MKT-005 → MKT-003 → MKT-004 → MKT-005`).
pub(crate) fn cycle(path: &[String]) -> Error {
    let (task, dep) = match path {
        [task, dep, ..] => (task.as_str(), dep.as_str()),
        _ => ("the task", "the dependency"),
    };
    Error::Conflict(format!(
        "{task} cannot depend on {dep}: that would close the cycle {}, and no task of a cycle \
         could ever become ready; remove one of its dependencies first",
        path.join(" → ")
    ))
}

/// The idempotency key's conflict: the same key with another request.
pub(crate) fn key_reused(agent_id: &str, key: &str) -> Error {
    Error::Conflict(format!(
        "idempotency_key {} was already used by {agent_id} for another request; send the same \
         request again to get its result, or use a new key for a new request",
        validate::shown(key)
    ))
}

/// What makes two idempotent creates the same request: the operation (one task or a
/// batch) and every body after defaults and trimming, dependencies included. A
/// SHA-256 of an unambiguous encoding of those, so a stored key costs 32 bytes
/// whatever the size of its tasks.
pub(crate) fn fingerprint(batch: bool, rows: &[NewRow]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut text = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    text(if batch { "create_tasks" } else { "create_task" });
    text(&rows.len().to_string());
    for row in rows {
        text(&row.title);
        match &row.description {
            Some(d) => text(&format!("+{d}")),
            None => text("-"),
        }
        text(&row.priority.to_string());
        text(&row.depends_on.len().to_string());
        for dep in &row.depends_on {
            match dep {
                DependsOn::Task(id) => text(&format!("task {id}")),
                DependsOn::Item(i) => text(&format!("item {i}")),
            }
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(title: &str, description: Option<&str>) -> NewRow {
        NewRow {
            title: title.into(),
            description: description.map(Into::into),
            priority: 5,
            depends_on: Vec::new(),
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let one = fingerprint(false, &[row("a", None)]);
        assert_eq!(one, fingerprint(false, &[row("a", None)]));
        assert_ne!(one, fingerprint(true, &[row("a", None)]));
        assert_ne!(one, fingerprint(false, &[row("a", Some(""))]));
        assert_ne!(
            fingerprint(true, &[row("ab", None), row("c", None)]),
            fingerprint(true, &[row("a", None), row("bc", None)])
        );
        let mut dep = row("a", None);
        dep.depends_on.push(DependsOn::Item(0));
        assert_ne!(one, fingerprint(false, &[dep]));
    }

    #[test]
    fn depends_on_checks_indices_and_keeps_first_mentions() {
        let deps = vec![
            DependsOn::Task("MKT-001".into()),
            DependsOn::Item(0),
            DependsOn::Task("MKT-001".into()),
        ];
        assert_eq!(depends_on(Some(1), deps.clone()).unwrap().len(), 2);
        let err = depends_on(None, deps.clone()).unwrap_err();
        assert!(
            err.to_string().contains("only inside create_tasks"),
            "{err}"
        );
        let err = depends_on(Some(0), deps).unwrap_err();
        assert!(
            err.to_string()
                .contains("the first item has no earlier item"),
            "{err}"
        );
        let err = depends_on(None, vec![DependsOn::Task("mkt".into())]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("depends_on[0] must look like MKT-001"),
            "{err}"
        );
        let many = (0..=1000)
            .map(|i| DependsOn::Task(format!("MKT-{i:03}")))
            .collect();
        let err = depends_on(None, many).unwrap_err();
        assert!(err.to_string().contains("at most 1000"), "{err}");
    }

    #[test]
    fn a_cycle_is_named_from_the_task() {
        let path: Vec<String> = ["MKT-005", "MKT-003", "MKT-004", "MKT-005"]
            .map(String::from)
            .into();
        let err = cycle(&path);
        assert_eq!(err.code(), "conflict");
        assert!(
            err.to_string()
                .contains("MKT-005 → MKT-003 → MKT-004 → MKT-005"),
            "{err}"
        );
    }
}

/// A shortest path of dependencies from the task `from` to the task `to` (rows of a
/// backend, both included), if `from` depends on `to` directly or through others: a
/// breadth-first search, each level taken in order and each task's dependencies in
/// creation order, so every backend finds the same path. `edges(level)` gives the
/// edges `(task, dependency)` out of the tasks of `level`, in any order.
pub(crate) fn dependency_path<E>(
    from: i64,
    to: i64,
    mut edges: impl FnMut(&[i64]) -> std::result::Result<Vec<(i64, i64)>, E>,
) -> std::result::Result<Option<Vec<i64>>, E> {
    let mut parent: HashMap<i64, i64> = HashMap::from([(from, from)]);
    let mut level = vec![from];
    while !level.is_empty() {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for (task, dep) in edges(&level)? {
            out.entry(task).or_default().push(dep);
        }
        let mut next = Vec::new();
        for task in &level {
            let mut deps = out.remove(task).unwrap_or_default();
            deps.sort_unstable();
            for dep in deps {
                if parent.contains_key(&dep) {
                    continue;
                }
                parent.insert(dep, *task);
                if dep == to {
                    let mut path = vec![to];
                    let mut at = to;
                    while at != from {
                        at = parent[&at];
                        path.push(at);
                    }
                    path.reverse();
                    return Ok(Some(path));
                }
                next.push(dep);
            }
        }
        level = next;
    }
    Ok(None)
}

#[cfg(test)]
mod path_tests {
    use super::dependency_path;

    /// The edges of a small graph: 1 → 2 → 4, 1 → 3 → 4, 4 → 5.
    fn edges(level: &[i64]) -> Result<Vec<(i64, i64)>, ()> {
        let all = [(1, 3), (1, 2), (2, 4), (3, 4), (4, 5)];
        Ok(all.into_iter().filter(|(t, _)| level.contains(t)).collect())
    }

    #[test]
    fn finds_the_first_shortest_path_in_creation_order() {
        assert_eq!(dependency_path(1, 5, edges), Ok(Some(vec![1, 2, 4, 5])));
        assert_eq!(dependency_path(3, 5, edges), Ok(Some(vec![3, 4, 5])));
        assert_eq!(dependency_path(5, 1, edges), Ok(None));
        assert_eq!(dependency_path(2, 3, edges), Ok(None));
    }
}
