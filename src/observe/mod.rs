//! The drain observer (issue 28): one replica at a time (a `coordination.k8s.io` Lease) watches
//! the pods admission labelled `drain.io/planned=true` and reads each container's drain record
//! (`crate::drain_record`) once, into bounded aggregates per workload, Prometheus series and
//! Warning Events. It keeps no copy of pods: each watch event is read and dropped.

pub mod drains;
pub mod metrics;
pub mod workload;
