//! What rejected a dry-run Pod, from the API server's answer: an admission webhook (a policy
//! engine: Kyverno, Gatekeeper), a ValidatingAdmissionPolicy, Pod Security admission, a
//! ResourceQuota, a LimitRange, or the API server's validation. The message is the rejecting
//! component's own, passed on whole.

/// A Pod the API server refused on its merits (not for the caller's permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rejection {
    pub code: u16,
    /// Who refused it, e.g. `the admission webhook "validate.kyverno.svc-fail"`.
    pub component: String,
    pub message: String,
}

/// `None` for an error that is not a rejection of the Pod: no answer at all, or RBAC's 403
/// (`User "x" cannot create resource "pods"`), which the steps word as a permission to grant.
pub(super) fn rejection(err: &kube::Error) -> Option<Rejection> {
    let kube::Error::Api(status) = err else {
        return None;
    };
    let message = status.message.as_str();
    if status.code == 403 && message.contains(" cannot create resource ") {
        return None;
    }
    // The API server's own wording: k8s.io/apiserver's webhook `ToStatusErr` writes
    // `admission webhook "NAME" denied the request: MESSAGE` (code 400 or 403, whatever the
    // policy engine sent); the admission plugins word theirs as matched below.
    let component = if let Some(name) = quoted_after(message, "admission webhook \"", '"') {
        format!("the admission webhook \"{name}\"")
    } else if let Some(name) = quoted_after(message, "ValidatingAdmissionPolicy '", '\'') {
        format!("the ValidatingAdmissionPolicy '{name}'")
    } else if message.contains("violates PodSecurity") {
        "Pod Security admission".to_owned()
    } else if message.contains("exceeded quota") || message.contains("must specify limits") {
        "a ResourceQuota".to_owned()
    } else if message.contains("usage per Container")
        || message.contains("usage per Pod")
        || message.contains("limit to request ratio")
    {
        "a LimitRange".to_owned()
    } else if status.code == 422 {
        "the API server's validation".to_owned()
    } else {
        format!("the API server's admission ({})", status.reason)
    };
    Some(Rejection {
        code: status.code,
        component,
        message: message.to_owned(),
    })
}

/// The text between `prefix` and the next `end`.
fn quoted_after<'a>(text: &'a str, prefix: &str, end: char) -> Option<&'a str> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn answer(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    fn component(code: u16, reason: &str, message: &str) -> Option<String> {
        rejection(&answer(code, reason, message)).map(|r| r.component)
    }

    /// Messages as the API server words them.
    #[test]
    fn the_rejecting_component_is_named() {
        assert_eq!(
            component(
                400,
                "BadRequest",
                "admission webhook \"validate.kyverno.svc-fail\" denied the request: \n\nresource Pod/shop/x was blocked due to the following policies \n\nrequire-pod-probes:\n  validate-probes: 'Liveness, readiness, or startup probes are required for all containers.'"
            )
            .as_deref(),
            Some("the admission webhook \"validate.kyverno.svc-fail\"")
        );
        assert_eq!(
            component(403, "Forbidden", "admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-probes] Container <drain-helper> has no <readinessProbe>").as_deref(),
            Some("the admission webhook \"validation.gatekeeper.sh\"")
        );
        assert_eq!(
            component(403, "Forbidden", "pods \"x\" is forbidden: ValidatingAdmissionPolicy 'require-probes' with binding 'b' denied request: probes").as_deref(),
            Some("the ValidatingAdmissionPolicy 'require-probes'")
        );
        assert_eq!(
            component(403, "Forbidden", "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true").as_deref(),
            Some("Pod Security admission")
        );
        assert_eq!(
            component(403, "Forbidden", "pods \"x\" is forbidden: exceeded quota: compute, requested: limits.cpu=110m, used: limits.cpu=1, limited: limits.cpu=1").as_deref(),
            Some("a ResourceQuota")
        );
        assert_eq!(
            component(403, "Forbidden", "pods \"x\" is forbidden: [maximum cpu usage per Container is 50m, but limit is 100m]").as_deref(),
            Some("a LimitRange")
        );
        assert_eq!(
            component(
                422,
                "Invalid",
                "Pod \"x\" is invalid: spec.volumes[1]: Required value: must specify a volume type"
            )
            .as_deref(),
            Some("the API server's validation")
        );
        // RBAC is not a rejection of the Pod: the step names the permission instead.
        assert_eq!(
            component(
                403,
                "Forbidden",
                "pods is forbidden: User \"ci\" cannot create resource \"pods\" in API group \"\" in the namespace \"shop\""
            ),
            None
        );
    }
}
