//! The test clock (`nimbus up --test-clock-file`): tests write how far ahead the region's clock
//! should run (ms) into a file, and the region follows within 50 ms, so expiry is tested by
//! moving time rather than by sleeping. Off unless the flag is given; the region says so loudly.

use std::path::PathBuf;
use std::time::Duration;

pub fn watch(file: PathBuf) {
    tracing::warn!(file = %file.display(), "TEST CLOCK: this region's time can be moved forward through a file; never use this outside tests");
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let offset = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
            if last != Some(offset) {
                nimbus_core::clock::set_offset_ms(offset);
                last = Some(offset);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
