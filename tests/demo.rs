//! `forfall demo` runs the whole loop with the fakes and cleans up after itself.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_warns_transfers_collects_and_syncs_back_with_no_dead_letter_and_leaves_nothing_behind()
 {
    let parent = tempfile::tempdir().expect("temp dir");
    let summary = forfall::demo::run(&forfall::demo::DemoOptions {
        days: 20,
        day_length: Duration::ZERO,
        parent_dir: parent.path().to_path_buf(),
        keep: false,
        narrate: false,
    })
    .await
    .expect("the demo runs");
    assert_eq!(summary.invoices, 36);
    assert!(summary.warnings > 0, "{summary:?}");
    assert!(summary.transfers > 0, "{summary:?}");
    assert!(
        summary.transfers <= summary.warnings,
        "no transfer without a warning: {summary:?}"
    );
    assert!(summary.agency_payments > 0, "{summary:?}");
    assert_eq!(
        summary.payments_synced_back, summary.agency_payments,
        "every collected payment registered once in Tripletex: {summary:?}"
    );
    assert!(summary.emails > 0, "{summary:?}");
    assert_eq!(summary.dead_letters, 0, "{summary:?}");
    assert_eq!(
        std::fs::read_dir(parent.path()).expect("dir").count(),
        0,
        "the demo's directory is removed"
    );
}
