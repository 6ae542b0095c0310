//! The output paths of a `.drv` file, read from its ATerm text
//! (`Derive([("out","/nix/store/…","",""),…],…)`). Written by hand: only
//! the first list is needed, and no crate reads Nix's derivation format.

use std::path::Path;

/// `(output name, path)` for each output named in the derivation; floating
/// content-addressed outputs (whose paths are not known in advance) are left out.
pub fn output_paths(aterm: &str) -> Vec<(String, String)> {
    let Some(mut rest) = aterm.strip_prefix("Derive([") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    while let Some(tuple) = rest.strip_prefix('(') {
        let Some((fields, after)) = split_tuple(tuple) else {
            break;
        };
        if let [name, path, ..] = fields.as_slice()
            && !path.is_empty()
        {
            paths.push((name.clone(), path.clone()));
        }
        rest = after.strip_prefix(',').unwrap_or(after);
        if rest.starts_with(']') {
            break;
        }
    }
    paths
}

/// The quoted strings of one `"a","b",…)` tuple, and the text after `)`.
fn split_tuple(text: &str) -> Option<(Vec<String>, &str)> {
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let body = rest.strip_prefix('"')?;
        let end = body.find('"')?;
        fields.push(body[..end].to_string());
        rest = &body[end + 1..];
        if let Some(after) = rest.strip_prefix(')') {
            return Some((fields, after));
        }
        rest = rest.strip_prefix(',')?;
    }
}

/// Read `drv` and list its outputs; empty if it cannot be read.
pub fn read_output_paths(drv: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(drv)
        .map(|text| output_paths(&text))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_of_a_real_derivation() {
        let aterm = r#"Derive([("dev","/nix/store/aaaa-x-dev","",""),("out","/nix/store/bbbb-x","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo"],[("name","x")])"#;
        let pair = |n: &str, p: &str| (n.to_string(), p.to_string());
        assert_eq!(
            output_paths(aterm),
            [
                pair("dev", "/nix/store/aaaa-x-dev"),
                pair("out", "/nix/store/bbbb-x")
            ]
        );
    }

    #[test]
    fn floating_outputs_and_garbage_give_nothing() {
        assert!(output_paths(r#"Derive([("out","","r:sha256","")],[])"#).is_empty());
        assert!(output_paths("not a derivation").is_empty());
        assert!(output_paths("Derive([(\"out").is_empty());
    }
}
