//! Who holds the release lock, and a person releasing it: `shipmate status` names the holder and
//! its queue, `shipmate unlock` refuses while the holder's migration may still run (unless
//! `--force`), asks before anything else (only `--yes` answers without a terminal), and a release
//! waiting behind a dead holder goes on as soon as the lock is released, long before the lease.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{CLUSTER, eventually, finish};
use crate::interference::open_ledger_entries;
use crate::web::{MIGRATE_OK, deploy_args, running_migration, web_env};

const UNLOCK: [&str; 5] = ["unlock", "--cluster", CLUSTER, "--service", "web"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holder_is_shown_and_released_by_a_person() {
    let (env, _) = web_env().await;
    let holder = env
        .command(&deploy_args("web:2", "sh -c 'echo holding; sleep 3'", &[]))
        .spawn()
        .expect("spawn the holder");
    let task = running_migration(&env, "the holder migrates").await;

    // While its migration runs, the lock is not released, whoever asks.
    let refused = env.shipmate(&[&UNLOCK[..], &["--yes"]].concat()).await;
    assert_eq!(refused.code, Some(2));
    assert!(
        refused
            .stderr
            .contains(&format!("its migration task {task} is still running"))
    );

    let status = env
        .shipmate(&[
            "status",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(status.code, Some(0));
    let json: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("status JSON");
    assert_eq!(json["lock"]["open"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["lock"]["open"][0]["record"]["image"], "web:2");
    assert_eq!(json["lock"]["open"][0]["record"]["state"], "migrating");

    // The holder's job dies for good; its migration finishes on its own.
    kill(
        Pid::from_raw(i32::try_from(holder.id().expect("pid")).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    finish(holder).await;
    eventually(Duration::from_secs(30), || async {
        env.tasks_started_by("shipmate/")
            .await
            .iter()
            .all(|t| t.last_status() == Some("STOPPED"))
            .then_some(())
    })
    .await
    .expect("the migration ends");

    // Another release waits for it (the lease is 5 minutes)…
    let waiting = env
        .command(&deploy_args("web:3", MIGRATE_OK, &[]))
        .spawn()
        .expect("spawn the next release");
    let queued = eventually(Duration::from_secs(30), || async {
        (open_ledger_entries(&env).await.len() == 2).then_some(())
    })
    .await;
    assert!(
        queued.is_some(),
        "the next release queues behind the dead holder"
    );
    let human = env
        .shipmate(&["status", "--cluster", CLUSTER, "--service", "web"])
        .await;
    assert!(
        human.stdout.contains("  held by release "),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("(deploy of web:2 by ci@runner pid"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("  then   #"),
        "the queue: {}",
        human.stdout
    );

    // … until a person releases it. Without a terminal only --yes answers.
    let unasked = env.shipmate(&UNLOCK).await;
    assert_eq!(unasked.code, Some(2));
    assert!(unasked.stderr.contains("pass --yes to release the lock"));
    let released = env.shipmate(&[&UNLOCK[..], &["--yes"]].concat()).await;
    assert_eq!(released.code, Some(0), "{}", released.stderr);
    assert!(
        released
            .stderr
            .contains("released the lock held by release ")
    );

    let next = finish(waiting).await;
    assert_eq!(next.code, Some(0), "the waiting release goes on");
    assert!(open_ledger_entries(&env).await.is_empty());
    let after = env
        .shipmate(&["status", "--cluster", CLUSTER, "--service", "web"])
        .await;
    assert!(after.stdout.contains(": unlocked"), "{}", after.stdout);
}
