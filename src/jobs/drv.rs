//! The output paths of a `.drv` file, for finding what a build produced.
//! The file is read by [`crate::derivation`].

use std::path::Path;

use crate::derivation;

/// `(output name, path)` for each output named in the derivation; floating
/// content-addressed outputs (whose paths are not known in advance) are
/// left out, and text that is not a derivation gives none.
pub(crate) fn output_paths(aterm: &str) -> Vec<(String, String)> {
    derivation::parse(aterm)
        .map(|drv| {
            drv.outputs
                .into_iter()
                .filter(|o| !o.path.is_empty())
                .map(|o| (o.name, o.path))
                .collect()
        })
        .unwrap_or_default()
}

/// Read `drv` and list its outputs; empty if it cannot be read.
pub(crate) fn read_output_paths(drv: &Path) -> Vec<(String, String)> {
    crate::bounds::read_regular_file(drv, crate::bounds::DRV_FILE)
        .map(|bytes| output_paths(&String::from_utf8_lossy(&bytes)))
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
        assert!(
            output_paths(r#"Derive([("out","","r:sha256","")],[],[],"s","b",[],[])"#).is_empty()
        );
        assert!(output_paths(r#"Derive([("out","","r:sha256","")],[])"#).is_empty());
        assert!(output_paths("not a derivation").is_empty());
        assert!(output_paths("Derive([(\"out").is_empty());
    }
}
