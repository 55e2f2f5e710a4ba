//! What a zone of this region offers. Sized for small hosts: the largest type fits a 2-core machine.

/// An instance type: `(id, family, vCPUs, memory in GiB)`.
pub const INSTANCE_TYPES: &[(&str, &str, u32, f64)] = &[
    ("ecs.t6-c1m0.small", "ecs.t6", 1, 0.25),
    ("ecs.t6-c1m0.medium", "ecs.t6", 1, 0.5),
    ("ecs.t6-c1m1.large", "ecs.t6", 1, 1.0),
    ("ecs.t6-c1m2.large", "ecs.t6", 1, 2.0),
    ("ecs.g6.large", "ecs.g6", 2, 8.0),
    ("ecs.c6.large", "ecs.c6", 2, 4.0),
];

/// Disk categories. All are the same triple-replicated store here; names are Alibaba's so SDK
/// defaults (`cloud_essd`, `cloud_efficiency`) are accepted.
pub const DISK_CATEGORIES: &[&str] = &["cloud_essd", "cloud_ssd", "cloud_efficiency"];

/// Resource kinds that can be created in every zone.
pub const RESOURCE_TYPES: &[&str] = &["Instance", "Disk", "VSwitch"];
