//! A fake API server for tests: an in-process tower service behind a real `kube::Client`, so
//! the library's requests go through kube's own URL building, serialization and error mapping.
//!
//! Two ways to answer, combinable: `routes`, a function of the request that answers what it
//! knows (lists, `/version`, ...); and a store of objects, one per path, with resourceVersion
//! checks like the API server's (GET, POST with `AlreadyExists`, PUT with `Conflict`). Every
//! request is recorded with the status it got.
//!
//! Included with `#[path = "common/fake_api.rs"] mod fake_api;` by the tests that need it, so
//! the others do not compile it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub status: u16,
}

impl Call {
    /// `path?query`, the way a test reads it.
    pub fn url(&self) -> String {
        format!("{}?{}", self.path, self.query)
    }
}

/// What a route sees of a request.
#[derive(Debug)]
pub struct Seen<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a Value,
}

/// A route's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: body.as_bytes().to_vec(),
        }
    }
}

type Routes = Box<dyn Fn(&Seen<'_>) -> Option<Reply> + Send + Sync>;

pub struct FakeApi {
    routes: Routes,
    objects: Mutex<Vec<(String, Value)>>,
    version: Mutex<u64>,
    calls: Mutex<Vec<Call>>,
    /// The answers to the first GETs wait here until this many have been answered, so that
    /// concurrent clients all read before any of them writes.
    first_gets: Barrier,
    gets: Mutex<usize>,
    hold_gets: usize,
}

/// A `Status` object, as the API server sends with an error.
pub fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("fake: {reason}"), "reason": reason, "code": code}),
    )
}

/// A list object with an optional continue token.
pub fn list(kind: &str, items: Vec<Value>, next: Option<&str>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": "v1",
           "metadata": {"continue": next.unwrap_or("")}, "items": items})
}

/// The `/version` answer of a server `major.minor`.
pub fn version(major: &str, minor: &str) -> Value {
    json!({"major": major, "minor": minor, "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "",
        "compiler": "", "platform": ""})
}

impl FakeApi {
    /// Answers from `routes` first, then from the store of `objects`; the first `hold_gets`
    /// GETs are held back until all of them are answered.
    pub fn new(
        routes: impl Fn(&Seen<'_>) -> Option<Reply> + Send + Sync + 'static,
        hold_gets: usize,
        objects: Vec<(String, Value)>,
    ) -> Arc<FakeApi> {
        Arc::new(FakeApi {
            routes: Box::new(routes),
            objects: Mutex::new(objects),
            version: Mutex::new(10),
            calls: Mutex::new(Vec::new()),
            first_gets: Barrier::new(hold_gets.max(1)),
            gets: Mutex::new(0),
            hold_gets,
        })
    }

    /// Only routes.
    pub fn routes(
        routes: impl Fn(&Seen<'_>) -> Option<Reply> + Send + Sync + 'static,
    ) -> Arc<FakeApi> {
        Self::new(routes, 0, Vec::new())
    }

    /// Only the store.
    pub fn store(hold_gets: usize, objects: Vec<(String, Value)>) -> Arc<FakeApi> {
        Self::new(|_| None, hold_gets, objects)
    }

    /// A client whose requests this fake answers (default namespace `namespace`).
    pub fn client_in(self: &Arc<FakeApi>, namespace: &str) -> Client {
        let fake = Arc::clone(self);
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = Arc::clone(&fake);
            async move { Ok::<_, Infallible>(fake.answer(request).await) }
        });
        Client::new(service, namespace)
    }

    fn next_version(&self) -> String {
        let mut version = self.version.lock().unwrap();
        *version += 1;
        version.to_string()
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let seen = Seen {
            method: &method,
            path: &path,
            query: &query,
            body: &body,
        };
        let reply = (self.routes)(&seen).unwrap_or_else(|| {
            let (code, answer) = self.apply(&method, &path, &body);
            Reply::json(code, answer)
        });
        let held = method == Method::GET && {
            let mut gets = self.gets.lock().unwrap();
            *gets += 1;
            *gets <= self.hold_gets
        };
        self.calls.lock().unwrap().push(Call {
            method,
            path,
            query,
            status: reply.status,
        });
        // Answered, but not handed back until every held GET is answered too.
        if held {
            self.first_gets.wait().await;
        }
        Response::builder()
            .status(reply.status)
            .header("content-type", reply.content_type)
            .body(Body::from(reply.body))
            .unwrap()
    }

    fn apply(&self, method: &Method, path: &str, body: &Value) -> (u16, Value) {
        let mut objects = self.objects.lock().unwrap();
        let position = |p: &str| objects.iter().position(|(stored, _)| stored == p);
        match *method {
            Method::GET => match position(path) {
                Some(i) => (200, objects[i].1.clone()),
                None => status(404, "NotFound"),
            },
            Method::POST => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let target = format!("{path}/{name}");
                if position(&target).is_some() {
                    return status(409, "AlreadyExists");
                }
                let mut object = body.clone();
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                objects.push((target, object.clone()));
                (201, object)
            }
            Method::PUT => {
                let Some(i) = position(path) else {
                    return status(404, "NotFound");
                };
                let stored = &objects[i].1["metadata"]["resourceVersion"];
                if body["metadata"]["resourceVersion"] != *stored {
                    return status(409, "Conflict");
                }
                let mut object = body.clone();
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                objects[i].1 = object.clone();
                (200, object)
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn stored(&self, path: &str) -> Value {
        let objects = self.objects.lock().unwrap();
        objects.iter().find(|(p, _)| p == path).unwrap().1.clone()
    }
}
