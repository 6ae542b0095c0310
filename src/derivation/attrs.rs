//! The attributes the build hook is given, read the way Nix reads them:
//! from the environment, or, with structured attributes, from the JSON
//! object in the `__json` variable.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Derivation;
use crate::nix_text::WHITESPACE;

/// What the build hook is told a build requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredFeatures {
    /// Every feature, as the set Nix passes to the hook.
    pub all: BTreeSet<String>,
    /// Features Nix adds on its own, each with why.
    pub implied: Vec<(String, &'static str)>,
}

impl Derivation {
    /// The `__json` object, when the derivation uses structured attributes.
    fn structured_attrs(&self) -> Result<Option<serde_json::Map<String, Value>>, String> {
        let Some(json) = self.env.get("__json") else {
            return Ok(None);
        };
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err("its __json attribute is not a JSON object".to_string()),
            Err(e) => Err(format!("cannot process its __json attribute: {e}")),
        }
    }

    /// `requiredSystemFeatures`, plus `ca-derivations` for outputs whose
    /// path is not known in advance (Nix's `getRequiredSystemFeatures`).
    pub fn required_features(&self) -> Result<RequiredFeatures, String> {
        const NAME: &str = "requiredSystemFeatures";
        let mut all: BTreeSet<String> = match self.structured_attrs()? {
            Some(attrs) => match attrs.get(NAME) {
                None => BTreeSet::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("attribute '{NAME}' must be a list of strings"))?,
                Some(_) => return Err(format!("attribute '{NAME}' must be a list of strings")),
            },
            None => self.env.get(NAME).map_or_else(BTreeSet::new, |text| {
                text.split(WHITESPACE)
                    .filter(|word| !word.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
        };
        let mut implied = Vec::new();
        if !self.has_known_output_paths() && all.insert("ca-derivations".to_string()) {
            implied.push((
                "ca-derivations".to_string(),
                "an output's path is only known after the build (content-addressed)",
            ));
        }
        Ok(RequiredFeatures { all, implied })
    }

    /// `preferLocalBuild`: Nix then builds locally when it can, without
    /// asking the build hook at all.
    pub fn prefer_local_build(&self) -> Result<bool, String> {
        const NAME: &str = "preferLocalBuild";
        match self.structured_attrs()? {
            Some(attrs) => match attrs.get(NAME) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format!("attribute '{NAME}' must be a Boolean")),
            },
            None => Ok(self.env.get(NAME).is_some_and(|v| v == "1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn features(drv: &Derivation) -> Vec<String> {
        drv.required_features().unwrap().all.into_iter().collect()
    }

    #[test]
    fn space_separated_in_the_environment() {
        let drv = parse(
            r#"Derive([("out","/p","","")],[],[],"s","b",[],[("preferLocalBuild","1"),("requiredSystemFeatures"," kvm\tbig-parallel\nkvm ")])"#,
        )
        .unwrap();
        assert_eq!(features(&drv), ["big-parallel", "kvm"]);
        assert!(drv.required_features().unwrap().implied.is_empty());
        assert!(drv.prefer_local_build().unwrap());
    }

    #[test]
    fn none_required_and_not_local() {
        let drv =
            parse(r#"Derive([("out","/p","","")],[],[],"s","b",[],[("preferLocalBuild","")])"#)
                .unwrap();
        assert!(features(&drv).is_empty());
        assert!(!drv.prefer_local_build().unwrap());
    }

    /// Written by Nix 2.8 for `__structuredAttrs = true;
    /// requiredSystemFeatures = ["kvm" "big-parallel"]; preferLocalBuild = true;`
    /// and a `note` with quotes, a backslash and a newline.
    const STRUCTURED: &str = r#"Derive([("out","/nix/store/w38y1ikqc5ffhqd2bh70abwqnc1882ik-rbtop-structured","","")],[],[],"aarch64-linux","/bin/sh",[],[("__json","{\"builder\":\"/bin/sh\",\"name\":\"rbtop-structured\",\"note\":\"a \\\"quoted\\\" \\\\ back\\nslash\",\"preferLocalBuild\":true,\"requiredSystemFeatures\":[\"kvm\",\"big-parallel\"],\"system\":\"aarch64-linux\"}"),("out","/nix/store/w38y1ikqc5ffhqd2bh70abwqnc1882ik-rbtop-structured")])"#;

    #[test]
    fn structured_attributes_from_a_real_derivation() {
        let drv = parse(STRUCTURED).unwrap();
        assert_eq!(drv.system, "aarch64-linux");
        assert_eq!(features(&drv), ["big-parallel", "kvm"]);
        assert!(drv.prefer_local_build().unwrap());
        // The escapes of both layers undone: ATerm's, then JSON's.
        let attrs = drv.structured_attrs().unwrap().unwrap();
        assert_eq!(attrs["note"], "a \"quoted\" \\ back\nslash");
    }

    #[test]
    fn structured_attributes_of_the_wrong_type_are_errors() {
        let with_json = |json: &str| {
            let env = serde_json::to_string(json).unwrap();
            let text =
                format!(r#"Derive([("out","/p","","")],[],[],"s","b",[],[("__json",{env})])"#);
            // serde_json's escapes for this input are also ATerm's.
            parse(&text).unwrap()
        };
        assert_eq!(
            with_json(r#"{"requiredSystemFeatures":"kvm"}"#)
                .required_features()
                .unwrap_err(),
            "attribute 'requiredSystemFeatures' must be a list of strings"
        );
        assert_eq!(
            with_json(r#"{"requiredSystemFeatures":["kvm",1]}"#)
                .required_features()
                .unwrap_err(),
            "attribute 'requiredSystemFeatures' must be a list of strings"
        );
        assert_eq!(
            with_json(r#"{"preferLocalBuild":"1"}"#)
                .prefer_local_build()
                .unwrap_err(),
            "attribute 'preferLocalBuild' must be a Boolean"
        );
        assert!(
            with_json("{")
                .required_features()
                .unwrap_err()
                .starts_with("cannot process its __json attribute: ")
        );
        assert!(features(&with_json("{}")).is_empty());
    }

    #[test]
    fn floating_outputs_imply_ca_derivations() {
        // Nix 2.8 with `__contentAddressed = true;` (experimental ca-derivations).
        let drv = parse(r#"Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","rbtop-ca"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("system","x86_64-linux")])"#).unwrap();
        let required = drv.required_features().unwrap();
        assert_eq!(features(&drv), ["ca-derivations"]);
        assert_eq!(required.implied.len(), 1);
        assert_eq!(required.implied[0].0, "ca-derivations");
    }
}
