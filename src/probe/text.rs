//! The wording of a probe's outcome, shared by `rbtop check` and the
//! dashboard (its events), so that both say the same thing.

use super::Status;

/// `refused: ssh: connect to host b1 port 22: Connection refused`: a host
/// that is not up, and why.
pub fn failure(status: Status, reason: &str) -> String {
    format!("{status}: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_its_status_then_its_reason() {
        assert_eq!(
            failure(Status::Timeout, "no answer within 3 s"),
            "timeout: no answer within 3 s"
        );
    }
}
