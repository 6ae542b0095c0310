//! `/proc/PID/stat` (Linux). Its second field, the command name, is in
//! parentheses and may itself hold spaces and parentheses, so the other
//! fields are counted after the last `)`.

/// The fields after the command name: index 0 is field 3 (state), index 1
/// field 4 (ppid), and so on (field N at index N - 3).
pub(crate) fn fields_after_name(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses() {
        let fields = fields_after_name("1234 (a (weird) name) S 77 1234").unwrap();
        assert_eq!(fields, ["S", "77", "1234"]);
        assert_eq!(fields_after_name("no name here"), None);
    }
}
