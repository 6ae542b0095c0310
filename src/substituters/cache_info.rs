//! `nix-cache-info`: a binary cache's `Key: value` lines (`StoreDir`,
//! `WantMassQuery`, `Priority`). A cache whose StoreDir is not this
//! machine's is useless to it: Nix refuses it ("binary cache … is for Nix
//! stores with prefix …").

/// What a cache says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheInfo {
    pub store_dir: Option<String>,
    pub priority: Option<u32>,
    pub want_mass_query: Option<bool>,
}

impl CacheInfo {
    /// Parse the file; `Err` names the first line that is not `Key: value`.
    pub fn parse(text: &str) -> Result<CacheInfo, String> {
        let mut info = CacheInfo::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("line {} is not `Key: value`", n + 1));
            };
            let value = value.trim();
            match key.trim() {
                "StoreDir" => info.store_dir = Some(value.to_string()),
                "Priority" => {
                    info.priority = Some(value.parse().map_err(|_| {
                        format!("line {}: Priority {value:?} is not a number", n + 1)
                    })?)
                }
                "WantMassQuery" => info.want_mass_query = Some(value == "1"),
                _ => {}
            }
        }
        Ok(info)
    }

    /// Why this cache cannot serve a store at `store_dir`, if it cannot.
    pub fn mismatch(&self, store_dir: &str) -> Option<String> {
        match &self.store_dir {
            None => Some("nix-cache-info has no StoreDir".into()),
            Some(dir) if dir.trim_end_matches('/') != store_dir.trim_end_matches('/') => {
                Some(format!(
                    "its StoreDir is {dir}, this machine's store is {store_dir}: Nix will not use it"
                ))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_keys_are_read_and_others_ignored() {
        let info =
            CacheInfo::parse("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\nFoo: bar\n")
                .unwrap();
        assert_eq!(
            info,
            CacheInfo {
                store_dir: Some("/nix/store".into()),
                priority: Some(40),
                want_mass_query: Some(true),
            }
        );
        assert_eq!(info.mismatch("/nix/store"), None);
        assert_eq!(
            info.mismatch("/gnu/store").unwrap(),
            "its StoreDir is /nix/store, this machine's store is /gnu/store: Nix will not use it"
        );
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            CacheInfo::parse("StoreDir: /nix/store\n<html>\n").unwrap_err(),
            "line 2 is not `Key: value`"
        );
        assert_eq!(
            CacheInfo::parse("Priority: high").unwrap_err(),
            "line 1: Priority \"high\" is not a number"
        );
        assert_eq!(
            CacheInfo::parse("WantMassQuery: 1")
                .unwrap()
                .mismatch("/nix/store")
                .unwrap(),
            "nix-cache-info has no StoreDir"
        );
    }
}
