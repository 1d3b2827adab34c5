//! Named traffic paths (`drain.io/profile`): the least D, and optionally B, that the slowest
//! thing still sending traffic after T0 needs. Sources and certainty: docs/profiles.md.

/// One built-in profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: &'static str,
    /// D is never planned below this unless `drain.io/delay` says so (then it is warned about).
    pub delay_floor: u32,
    /// B is raised to this when no `drain.io/shutdown-budget` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_floor: Option<u32>,
    /// Shown by `explain`: where the number comes from and what else to configure.
    pub note: &'static str,
}

/// The built-in profiles; every number is sourced (or marked an estimate) in docs/profiles.md.
pub const BUILTIN: &[Profile] = &[
    Profile {
        name: "in-cluster",
        delay_floor: 5,
        budget_floor: None,
        note: "kube-proxy or an eBPF replacement: endpoint removal reaches every node within seconds (estimate, docs/profiles.md)",
    },
    Profile {
        name: "ingress-nginx",
        delay_floor: 10,
        budget_floor: None,
        note: "ingress-nginx updates its Lua upstreams from EndpointSlices after a sync (estimate, docs/profiles.md)",
    },
    Profile {
        name: "nginx-gateway-fabric",
        delay_floor: 10,
        budget_floor: None,
        note: "NGINX Gateway Fabric reloads nginx from EndpointSlices (estimate, docs/profiles.md)",
    },
    Profile {
        name: "envoy-gateway",
        delay_floor: 10,
        budget_floor: None,
        note: "Envoy Gateway pushes endpoint changes over xDS (estimate, docs/profiles.md)",
    },
    Profile {
        name: "traefik",
        delay_floor: 10,
        budget_floor: None,
        note: "Traefik throttles provider updates (estimate, docs/profiles.md)",
    },
    Profile {
        name: "aws-alb",
        delay_floor: 30,
        budget_floor: None,
        note: "AWS ALB with IP targets: deregistration by the AWS Load Balancer Controller takes tens of seconds; keep its pod readiness gate on (estimate from reports, docs/profiles.md)",
    },
    Profile {
        name: "aws-nlb",
        delay_floor: 120,
        budget_floor: None,
        note: "AWS NLB with IP targets keeps opening connections to a deregistering target for about 2 minutes whatever the deregistration delay (aws-load-balancer-controller#2366, containers-roadmap#470; docs/profiles.md)",
    },
    Profile {
        name: "gke-neg",
        delay_floor: 30,
        budget_floor: None,
        note: "GKE container-native load balancing (NEG): endpoint detach goes through the NEG controller and the backend service (estimate, docs/profiles.md)",
    },
    Profile {
        name: "azure-lb",
        delay_floor: 15,
        budget_floor: None,
        note: "AKS Service of type LoadBalancer: health-probe driven removal (estimate, docs/profiles.md)",
    },
    Profile {
        name: "azure-appgw",
        delay_floor: 30,
        budget_floor: None,
        note: "Azure Application Gateway through AGIC: the controller rewrites the backend pool (estimate, docs/profiles.md)",
    },
];

/// The profiles a webhook knows: the built-ins, with those of `--profiles-file` added or
/// put in their place. Copied into every plan's settings, so it borrows: a file's profiles are
/// read once at startup and live as long as the process (see [`Catalogue::load`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catalogue(&'static [Profile]);

impl Default for Catalogue {
    fn default() -> Self {
        Self::BUILTIN
    }
}

impl Catalogue {
    pub const BUILTIN: Catalogue = Catalogue(BUILTIN);

    /// The profile called `name`.
    pub fn find(self, name: &str) -> Option<&'static Profile> {
        self.0.iter().find(|p| p.name == name)
    }

    pub fn profiles(self) -> &'static [Profile] {
        self.0
    }

    /// The known names, comma separated, for error messages.
    pub fn known_names(self) -> String {
        self.0.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }

    /// The built-ins with the profiles of a `--profiles-file` (JSON, see docs/profiles.md).
    /// Called once at startup: the result is leaked so that plans borrow it like the
    /// built-ins, which keeps `Settings` cheap to copy and the hot path free of reference
    /// counting. `origin` names the file in errors.
    pub fn load(text: &str, origin: &str) -> Result<Catalogue, ProfilesFileError> {
        let file: ProfilesFile = serde_json::from_str(text).map_err(|err| ProfilesFileError {
            origin: origin.to_owned(),
            problem: format!("{err}"),
        })?;
        let fail = |problem: String| ProfilesFileError {
            origin: origin.to_owned(),
            problem,
        };
        let mut merged: Vec<Profile> = BUILTIN.to_vec();
        for (i, entry) in file.profiles.iter().enumerate() {
            let at = format!("profiles[{i}]");
            entry
                .check()
                .map_err(|p| fail(format!("{at} ({:?}): {p}", entry.name)))?;
            if file.profiles[..i].iter().any(|e| e.name == entry.name) {
                return Err(fail(format!(
                    "{at}: the name {:?} is given twice; keep one",
                    entry.name
                )));
            }
            let profile = Profile {
                name: leak(&entry.name),
                delay_floor: entry.delay_floor,
                budget_floor: entry.budget_floor,
                note: leak(&entry.note),
            };
            match merged.iter_mut().find(|p| p.name == profile.name) {
                Some(builtin) => *builtin = profile,
                None => merged.push(profile),
            }
        }
        Ok(Catalogue(Box::leak(merged.into_boxed_slice())))
    }
}

/// Where a profile of a catalogue comes from, for `drain-webhook profiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    BuiltIn,
    /// `--profiles-file`, in place of the built-in of the same name.
    FileReplacingBuiltIn,
    File,
}

impl Profile {
    /// Where this profile comes from: the built-ins, or a file (in place of a built-in).
    pub fn origin(&self) -> Origin {
        match Catalogue::BUILTIN.find(self.name) {
            Some(builtin) if builtin == self => Origin::BuiltIn,
            Some(_) => Origin::FileReplacingBuiltIn,
            None => Origin::File,
        }
    }
}

impl Catalogue {
    /// `drain-webhook profiles`: one line a profile, the default (`--profile`) marked.
    pub fn render_text(self, default: Option<&Profile>) -> String {
        let mut out = String::from(
            "NAME                  D FLOOR  B FLOOR  FROM                      NOTE\n",
        );
        for p in self.0 {
            let from = match p.origin() {
                Origin::BuiltIn => "built-in",
                Origin::FileReplacingBuiltIn => "file (replaces built-in)",
                Origin::File => "file",
            };
            let name = if default.is_some_and(|d| d.name == p.name) {
                format!("{} (default)", p.name)
            } else {
                p.name.to_owned()
            };
            let budget = p
                .budget_floor
                .map_or_else(|| "-".to_owned(), |b| format!("{b}s"));
            out.push_str(&format!(
                "{name:<21} {:>7}  {budget:>7}  {from:<25} {}\n",
                format!("{}s", p.delay_floor),
                p.note
            ));
        }
        out
    }

    /// `drain-webhook profiles -o json`: the profiles with their origin and the default.
    pub fn render_json(self, default: Option<&Profile>) -> String {
        #[derive(serde::Serialize)]
        struct Listed<'a> {
            #[serde(flatten)]
            profile: &'a Profile,
            origin: Origin,
            default: bool,
        }
        let listed: Vec<Listed<'_>> = self
            .0
            .iter()
            .map(|profile| Listed {
                profile,
                origin: profile.origin(),
                default: default.is_some_and(|d| d.name == profile.name),
            })
            .collect();
        // Plain strings, numbers and booleans always serialize.
        let mut text = serde_json::to_string_pretty(&listed).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// The most a floor may be: Kubernetes' own upper bound for a delay is the grace period, and
/// an hour is already the webhook's default `--max-grace`.
const MAX_FLOOR: u32 = 3600;

/// `--profiles-file`: `{"profiles": [{"name": .., "delayFloor": .., "budgetFloor": ..,
/// "note": ..}]}`. Unknown fields are refused so that a misspelt floor is not silently lost.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    profiles: Vec<ProfileEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileEntry {
    name: String,
    delay_floor: u32,
    #[serde(default)]
    budget_floor: Option<u32>,
    note: String,
}

impl ProfileEntry {
    fn check(&self) -> Result<(), String> {
        if !crate::pod::is_dns_label(&self.name) {
            return Err(
                "name must be 1-63 lower-case letters, digits or '-', not starting or ending with '-' (for example \"corp-f5\")".into(),
            );
        }
        for (field, value) in [
            ("delayFloor", Some(self.delay_floor)),
            ("budgetFloor", self.budget_floor),
        ] {
            if value.is_some_and(|v| v > MAX_FLOOR) {
                return Err(format!(
                    "{field} {} is above {MAX_FLOOR} seconds; give it in seconds, for example 45",
                    value.unwrap_or_default()
                ));
            }
        }
        if self.note.trim().is_empty() {
            return Err(
                "note is empty; say where the number comes from (it is shown by explain)".into(),
            );
        }
        Ok(())
    }
}

/// A `--profiles-file` the webhook refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profiles file {origin}: {problem}")]
pub struct ProfilesFileError {
    pub origin: String,
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_notes_cite_docs() {
        for (i, p) in BUILTIN.iter().enumerate() {
            assert!(BUILTIN[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert!(p.note.contains("docs/profiles.md"), "{}", p.name);
        }
        let builtin = Catalogue::BUILTIN;
        assert_eq!(builtin.find("aws-nlb").map(|p| p.delay_floor), Some(120));
        assert!(builtin.find("aws").is_none());
    }

    fn load(text: &str) -> Result<Catalogue, String> {
        Catalogue::load(text, "profiles.json").map_err(|e| e.to_string())
    }

    #[test]
    fn a_file_adds_profiles_and_replaces_builtins_of_the_same_name() {
        let catalogue = load(
            r#"{"profiles": [
                {"name": "corp-f5", "delayFloor": 45, "budgetFloor": 20, "note": "F5 pool sync, measured"},
                {"name": "aws-nlb", "delayFloor": 150, "note": "our NLB, measured at 140 s"}
            ]}"#,
        )
        .unwrap();
        let f5 = catalogue.find("corp-f5").unwrap();
        assert_eq!((f5.delay_floor, f5.budget_floor), (45, Some(20)));
        assert_eq!(catalogue.find("aws-nlb").unwrap().delay_floor, 150);
        // Every built-in is still there, once.
        assert_eq!(catalogue.profiles().len(), BUILTIN.len() + 1);
        assert!(catalogue.known_names().ends_with("corp-f5"));
        assert_eq!(
            catalogue.find("in-cluster"),
            Catalogue::BUILTIN.find("in-cluster")
        );
    }

    #[test]
    fn a_bad_file_is_refused_with_the_entry_and_the_fix() {
        for (text, expected) in [
            ("not json", "profiles.json: expected"),
            (r#"{"profile": []}"#, "unknown field `profile`"),
            (
                r#"{"profiles": [{"name": "x", "delayfloor": 3, "note": "n"}]}"#,
                "unknown field `delayfloor`",
            ),
            (
                r#"{"profiles": [{"name": "Corp F5", "delayFloor": 3, "note": "n"}]}"#,
                "profiles[0] (\"Corp F5\"): name must be",
            ),
            (
                r#"{"profiles": [{"name": "a", "delayFloor": 7200, "note": "n"}]}"#,
                "delayFloor 7200 is above 3600",
            ),
            (
                r#"{"profiles": [{"name": "a", "delayFloor": 7, "budgetFloor": -1, "note": "n"}]}"#,
                "invalid value",
            ),
            (
                r#"{"profiles": [{"name": "a", "delayFloor": 7, "note": " "}]}"#,
                "note is empty",
            ),
            (
                r#"{"profiles": [{"name": "a", "delayFloor": 7, "note": "n"}, {"name": "a", "delayFloor": 8, "note": "n"}]}"#,
                "profiles[1]: the name \"a\" is given twice",
            ),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("profiles file profiles.json: "), "{err}");
        }
    }
}
