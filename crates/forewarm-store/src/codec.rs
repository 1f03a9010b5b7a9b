//! How a sample is stored: a fixed little-endian layout, version 1, or 2 with features.
//!
//! `[1][start][at_ms][cpu_ms][peak_mib][io_kib][duration_ms][latency_ms][payload_bytes]
//! [tenant length u32][tenant]`: 62 bytes plus the tenant's name, against ~290 as JSON. The
//! code type is not repeated: it is the first part of the record's key. A sample with feature
//! values is version 2: `[2]`, the same fields, then `[count u8][count × f64]` before the
//! tenant. Records written as JSON (before version 1; they start with `{`) are still read.

use crate::{Sample, Start};

/// The first byte of a version-1 record.
const V1: u8 = 1;
/// The first byte of a version-2 record (version 1 with feature values).
const V2: u8 = 2;
/// Feature values one record holds at most.
const MAX_FEATURES: usize = u8::MAX as usize;

/// The stored form of `s` (its code type goes in the key).
pub(crate) fn encode(s: &Sample) -> Vec<u8> {
    let tenant = s.tenant.as_bytes();
    let features = &s.features[..s.features.len().min(MAX_FEATURES)];
    let mut b = Vec::with_capacity(63 + 8 * features.len() + tenant.len());
    b.push(if features.is_empty() { V1 } else { V2 });
    b.push(match s.start {
        Start::Cold => 0,
        Start::Warm => 1,
        Start::Prewarmed => 2,
    });
    for word in [
        s.at_ms.to_le_bytes(),
        s.cpu_ms.to_le_bytes(),
        s.peak_mib.to_le_bytes(),
        s.io_kib.to_le_bytes(),
        s.duration_ms.to_le_bytes(),
        s.latency_ms.to_le_bytes(),
        s.payload_bytes.to_le_bytes(),
    ] {
        b.extend_from_slice(&word);
    }
    if !features.is_empty() {
        b.push(features.len() as u8);
        for f in features {
            b.extend_from_slice(&f.to_le_bytes());
        }
    }
    // A tenant name is an API string bounded by the request body limit, far below 4 GiB.
    b.extend_from_slice(&(tenant.len() as u32).to_le_bytes());
    b.extend_from_slice(tenant);
    b
}

/// The sample of code type `code` stored as `bytes`.
pub(crate) fn decode(code: &str, bytes: &[u8]) -> Result<Sample, String> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(&version @ (V1 | V2)) => {
            let mut r = Reader(&bytes[1..]);
            let start = match r.take::<1>()?[0] {
                0 => Start::Cold,
                1 => Start::Warm,
                2 => Start::Prewarmed,
                other => return Err(format!("unknown start kind {other}")),
            };
            let at_ms = r.u64()?;
            let (cpu_ms, peak_mib, io_kib) = (r.f64()?, r.f64()?, r.u64()?);
            let (duration_ms, latency_ms, payload_bytes) = (r.f64()?, r.f64()?, r.u64()?);
            let mut features = Vec::new();
            if version == V2 {
                let count = r.take::<1>()?[0];
                for _ in 0..count {
                    features.push(r.f64()?);
                }
            }
            let len = u32::from_le_bytes(r.take::<4>()?) as usize;
            if r.0.len() != len {
                return Err(format!(
                    "tenant name of {len} bytes, {} left in the record",
                    r.0.len()
                ));
            }
            let tenant = std::str::from_utf8(r.0).map_err(|e| format!("tenant name: {e}"))?;
            Ok(Sample {
                at_ms,
                tenant: tenant.to_owned(),
                code: code.to_owned(),
                start,
                cpu_ms,
                peak_mib,
                io_kib,
                duration_ms,
                latency_ms,
                payload_bytes,
                features,
            })
        }
        Some(other) => Err(format!("unknown sample encoding {other}")),
        None => Err(String::from("empty sample record")),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err(String::from("sample record cut short"));
        };
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    fn f64(&mut self) -> Result<f64, String> {
        self.take::<8>().map(f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Sample {
        Sample {
            at_ms: 1_796_219_811_868,
            tenant: String::from("tenant-é"),
            code: String::from("tenant-é/noop"),
            start: Start::Prewarmed,
            cpu_ms: 0.013,
            peak_mib: 11.28515625,
            io_kib: 4096,
            duration_ms: 0.00625,
            latency_ms: 0.41,
            payload_bytes: 17,
            features: Vec::new(),
        }
    }

    #[test]
    fn t04_feature_values_survive_the_round_trip_and_cuts_are_errors() {
        let s = Sample {
            features: vec![1500.0, 0.25],
            ..sample()
        };
        let bytes = encode(&s);
        assert_eq!(bytes[0], V2);
        assert_eq!(bytes.len(), encode(&sample()).len() + 1 + 16);
        assert_eq!(decode(&s.code, &bytes), Ok(s.clone()));
        for cut in 0..bytes.len() {
            assert!(decode("c", &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let json = serde_json::to_vec(&s).expect("json");
        assert_eq!(decode(&s.code, &json), Ok(s));
    }

    #[test]
    fn t01_a_sample_survives_the_round_trip_in_under_half_of_json() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(decode(&s.code, &bytes), Ok(s.clone()));
        let json = serde_json::to_vec(&s).expect("json");
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn t02_json_records_of_earlier_versions_are_read() {
        let s = sample();
        let json = serde_json::to_vec(&s).expect("json");
        assert_eq!(decode(&s.code, &json), Ok(s));
    }

    #[test]
    fn t03_damaged_records_are_errors_not_panics() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode("c", &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(b'x');
        assert!(decode("c", &longer).is_err());
        let mut bad_start = bytes.clone();
        bad_start[1] = 9;
        assert_eq!(
            decode("c", &bad_start),
            Err(String::from("unknown start kind 9"))
        );
        assert_eq!(
            decode("c", &[7]),
            Err(String::from("unknown sample encoding 7"))
        );
    }

    /// Any sample: every integer and float (NaN and infinities too), any tenant name.
    fn any_sample() -> impl Strategy<Value = Sample> {
        let start = prop_oneof![Just(Start::Cold), Just(Start::Warm), Just(Start::Prewarmed)];
        (any::<[u64; 3]>(), any::<[f64; 4]>(), ".{0,40}", start).prop_map(
            |(ints, floats, tenant, start)| {
                let mut s = sample();
                [s.at_ms, s.io_kib, s.payload_bytes] = ints;
                [s.cpu_ms, s.peak_mib, s.duration_ms, s.latency_ms] = floats;
                s.code = format!("{tenant}/c");
                (s.tenant, s.start) = (tenant, start);
                s
            },
        )
    }

    /// The floats by their bits: NaN and -0.0 must come back as they went in.
    fn bits(s: &Sample) -> [u64; 4] {
        [s.cpu_ms, s.peak_mib, s.duration_ms, s.latency_ms].map(f64::to_bits)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any sample (NaN, infinities, any tenant name) comes back bit for bit.
        #[test]
        fn p01_encode_then_decode_is_the_identity(s in any_sample()) {
            let back = decode(&s.code, &encode(&s)).expect("decodes");
            prop_assert_eq!(bits(&back), bits(&s));
            prop_assert_eq!(encode(&back), encode(&s));
            prop_assert_eq!((&back.tenant, &back.code, back.start), (&s.tenant, &s.code, s.start));
        }

        /// Arbitrary bytes, as they are or behind a version-1 or JSON first byte: a sample
        /// or an error, never a panic.
        #[test]
        fn p02_arbitrary_bytes_decode_to_a_sample_or_an_error(
            first in prop_oneof![Just(None), Just(Some(V1)), Just(Some(b'{'))],
            rest in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let bytes: Vec<u8> = first.into_iter().chain(rest).collect();
            if let Err(e) = decode("c", &bytes) {
                prop_assert!(!e.is_empty());
            }
        }

        /// A stored record cut short, grown, with a byte inserted or changed: an error or a
        /// sample, never a panic; one cut short or grown at its end is always an error.
        #[test]
        fn p03_damaged_records_never_panic(
            s in any_sample(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0u8..4,
        ) {
            let mut bytes = encode(&s);
            let i = at.index(bytes.len());
            match how {
                0 => {
                    bytes.truncate(i);
                    prop_assert!(decode("c", &bytes).is_err(), "cut at {}", i);
                }
                1 => {
                    bytes.push(byte);
                    prop_assert!(decode("c", &bytes).is_err(), "grown by {}", byte);
                }
                2 => {
                    bytes.insert(i + 1, byte);
                    let _ = decode("c", &bytes);
                }
                _ => {
                    bytes[i] = byte;
                    let _ = decode("c", &bytes);
                }
            }
        }
    }
}
