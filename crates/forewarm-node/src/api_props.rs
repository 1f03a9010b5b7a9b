//! Property tests of the API's request bodies (issue 15, "no input panics"): whatever bytes
//! or JSON a client sends to `POST /v1/tenants`, `PUT /v1/codes/{code}` or
//! `POST /v1/invoke/{code}`, reading and checking the body gives a request that respects
//! every bound the rest of the node relies on, or a 4xx with a reason; never a panic.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

const CASES: u32 = 1000;

/// Every field name the three bodies know, so that objects often get past "unknown field".
const FIELDS: [&str; 15] = [
    "name",
    "max_warm",
    "max_memory_mib",
    "allowed_regions",
    "max_extra_latency_ms",
    "workload",
    "image",
    "max_cpu_millis",
    "timeout_ms",
    "max_queue",
    "cpu_ms",
    "mem_mib",
    "io_kib",
    "init_ms",
    "sleep_ms",
];

/// Numbers at and around every bound the bodies are checked against, and the integer edges.
const EDGES: [u64; 32] = [
    0,
    1,
    7,
    8,
    9,
    10,
    15,
    16,
    17,
    49,
    50,
    1_000,
    10_000,
    10_001,
    16_000,
    16_001,
    16_376,
    16_384,
    16_385,
    100_000,
    100_001,
    600_000,
    600_001,
    900_000,
    900_001,
    4 * 1024 * 1024,
    4 * 1024 * 1024 + 1,
    1 << 24,
    (1 << 24) + 1,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    u64::MAX,
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_]{0,10}",
    ]
}

/// Any JSON value, biased towards the bodies' field names, bounds and plausible names.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(EDGES.to_vec()).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z0-9-]{0,34}".prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A number for a field: mostly at a bound, sometimes anything, or not a number.
fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => prop::sample::select(EDGES.to_vec()).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => "[0-9]{0,3}".prop_map(Value::from),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => "[a-z0-9-]{1,33}".prop_map(Value::from),
        1 => ".{0,40}".prop_map(Value::from),
        1 => number(),
    ]
    .boxed()
}

/// An object with some of `fields`, each with a value of its strategy.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    fields
        .into_iter()
        .map(|(k, v)| prop::option::of(v).prop_map(move |v| v.map(|v| (k.to_owned(), v))))
        .collect::<Vec<_>>()
        .prop_map(|kv| Value::Object(kv.into_iter().flatten().collect()))
        .boxed()
}

/// Bodies shaped like the three requests, with values at and past every bound.
fn shaped() -> impl Strategy<Value = Value> {
    let workload =
        |fields: &[&'static str]| object(fields.iter().map(|f| (*f, number())).collect());
    prop_oneof![
        object(vec![
            ("name", name()),
            ("max_warm", number()),
            ("max_memory_mib", number()),
            (
                "allowed_regions",
                prop::collection::vec(name(), 0..3)
                    .prop_map(Value::Array)
                    .boxed()
            ),
            ("max_extra_latency_ms", number()),
        ]),
        object(vec![
            (
                "workload",
                workload(&[
                    "cpu_ms",
                    "mem_mib",
                    "io_kib",
                    "init_ms",
                    "sleep_ms",
                    "mem_kib_per_item",
                    "cpu_us_per_item",
                ])
            ),
            (
                "image",
                prop_oneof!["[a-z/:0-9]{0,20}", "[ -~]{0,10}", "x{250,260}"]
                    .prop_map(Value::from)
                    .boxed()
            ),
            ("max_memory_mib", number()),
            ("max_cpu_millis", number()),
            ("timeout_ms", number()),
            ("max_queue", number()),
            (
                "features",
                prop::collection::vec(name(), 0..10)
                    .prop_map(Value::Array)
                    .boxed()
            ),
        ]),
        workload(&["cpu_ms", "mem_mib", "io_kib", "sleep_ms", "items", "width"]),
    ]
}

/// A body: arbitrary bytes, or a JSON value as a client would send it.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => json().prop_map(|v| serde_json::to_vec(&v).expect("a JSON value serialises")),
        2 => shaped().prop_map(|v| serde_json::to_vec(&v).expect("a JSON value serialises")),
    ]
}

/// A code type as the catalog could hold it (registered through `code_request`).
fn code() -> impl Strategy<Value = Code> {
    let features = prop::sample::subsequence(vec!["items", "width"], 0..=2);
    (
        0u64..=16_376,
        0u64..=600_000,
        16u32..=16_384,
        0u64..=4096,
        features,
    )
        .prop_map(|(mem_mib, cpu_ms, max, per_item, features)| Code {
            tenant: String::from("acme"),
            name: String::from("resize"),
            workload: Workload {
                cpu_ms,
                mem_mib: mem_mib.min(u64::from(max).saturating_sub(RUNNER_OVERHEAD_MIB)),
                mem_kib_per_item: per_item,
                ..Workload::default()
            },
            image: String::from("forewarm/runner:0"),
            max_memory_mib: max,
            max_cpu_millis: 1000,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_queue: DEFAULT_MAX_QUEUE,
            features: features.into_iter().map(String::from).collect(),
            version: 1,
            writes: vec![],
        })
}

/// A refusal is the client's fault, says which check failed, and why.
fn assert_client_error(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(e.status.is_client_error(), "{:?}", e);
    prop_assert!(!e.code.is_empty() && !e.message.is_empty(), "{:?}", e);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn p01_a_tenant_body_is_a_tenant_in_bounds_or_a_4xx(body in body()) {
        match tenant_request(Ok(Bytes::from(body))) {
            Ok(t) => {
                prop_assert!(valid_id(&t.name), "{:?}", t);
                prop_assert!((1..=10_000).contains(&t.max_warm), "{:?}", t);
                prop_assert!((16..=1 << 24).contains(&t.max_memory_mib), "{:?}", t);
                prop_assert!(t.allowed_regions.iter().all(|r| valid_id(r)), "{:?}", t);
                prop_assert!(t.max_extra_latency_ms.is_none_or(|ms| ms <= 60_000), "{:?}", t);
            }
            Err(e) => assert_client_error(&e)?,
        }
    }

    #[test]
    fn p02_a_code_body_is_a_code_type_in_bounds_or_a_4xx(body in body()) {
        match code_request(Ok(Bytes::from(body)), "forewarm/runner:0") {
            Ok(c) => {
                prop_assert!(c.workload.validate().is_ok(), "{:?}", c);
                prop_assert!((16..=16_384).contains(&c.max_memory_mib), "{:?}", c);
                prop_assert!((50..=16_000).contains(&c.max_cpu_millis), "{:?}", c);
                prop_assert!((MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&c.timeout_ms), "{:?}", c);
                prop_assert!(c.max_queue <= MAX_MAX_QUEUE, "{:?}", c);
                prop_assert!(c.workload.mem_mib + RUNNER_OVERHEAD_MIB <= u64::from(c.max_memory_mib), "{:?}", c);
                prop_assert!(!c.image.is_empty() && c.image.len() <= 256, "{:?}", c);
                prop_assert!(!c.image.chars().any(char::is_whitespace), "{:?}", c);
            }
            Err(e) => assert_client_error(&e)?,
        }
    }

    #[test]
    fn p03_an_invoke_body_is_overrides_in_bounds_or_a_4xx(body in body(), code in code()) {
        let len = body.len();
        match invoke_request(Ok(Bytes::from(body)), &code) {
            Ok(InvokeRequest { overrides: o, features, payload_bytes }) => {
                let w = code.workload.with(&o);
                prop_assert!(w.validate().is_ok(), "{:?}", o);
                prop_assert!(w.mem_mib + RUNNER_OVERHEAD_MIB <= u64::from(code.max_memory_mib), "{:?}", o);
                prop_assert_eq!(payload_bytes, len);
                prop_assert_eq!(features.len(), code.features.len());
                prop_assert!(features.iter().all(|f| f.is_finite() && *f >= 0.0), "{:?}", features);
            }
            Err(e) => assert_client_error(&e)?,
        }
    }
}
