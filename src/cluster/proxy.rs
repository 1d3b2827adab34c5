//! GETs through the API server's service proxy
//! (`/api/v1/namespaces/NS/services/SCHEME:NAME:PORT/proxy/PATH`): how the CLI reads what the
//! webhook serves from outside the cluster, where it cannot reach the Service itself. The API
//! server picks one ready endpoint of the port at random for each request (kubernetes
//! pkg/registry/core/service/storage, `ResourceLocation`); the port may be given by name.

use kube::Client;

/// One port of a Service, as the proxy names it. RBAC authorizes `get` on `services/proxy`
/// with exactly this `SCHEME:NAME:PORT` as the resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort<'a> {
    pub namespace: &'a str,
    /// `http` or `https`: how the API server talks to the pod.
    pub scheme: &'a str,
    pub service: &'a str,
    /// The port's name or number.
    pub port: &'a str,
}

impl ServicePort<'_> {
    /// The resource name RBAC sees: `SCHEME:NAME:PORT`.
    pub fn resource_name(&self) -> String {
        format!("{}:{}:{}", self.scheme, self.service, self.port)
    }

    /// The request path for `path` (starting with `/`) on this port.
    pub fn proxy_path(&self, path: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}/proxy{path}",
            self.namespace,
            self.resource_name()
        )
    }
}

/// `GET path` on `port` through the service proxy: the body, or kube's error (an API error
/// carries the HTTP status the API server or the pod answered).
pub async fn get_text(
    client: &Client,
    port: &ServicePort<'_>,
    path: &str,
) -> Result<String, kube::Error> {
    let uri = port.proxy_path(path);
    let request = axum::http::Request::get(&uri)
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request_text(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_resource_names() {
        let port = ServicePort {
            namespace: "drain-system",
            scheme: "http",
            service: "drain-webhook",
            port: "admin",
        };
        assert_eq!(port.resource_name(), "http:drain-webhook:admin");
        assert_eq!(
            port.proxy_path("/drains"),
            "/api/v1/namespaces/drain-system/services/http:drain-webhook:admin/proxy/drains"
        );
    }
}
