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

/// The built-in profile called `name`.
pub fn find(name: &str) -> Option<&'static Profile> {
    BUILTIN.iter().find(|p| p.name == name)
}

/// The known names, comma separated, for error messages.
pub fn known_names() -> String {
    BUILTIN
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
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
        assert_eq!(find("aws-nlb").map(|p| p.delay_floor), Some(120));
        assert!(find("aws").is_none());
    }
}
