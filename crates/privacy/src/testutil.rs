//! Test-only encoders, written from the specifications' field tables, to build consent strings with chosen
//! values (test data "derived from the spec"): TCF v2 core segment ("Consent string and vendor list formats
//! v2", §"The core string") and GPP headers (GPP v1 §"Header section", §"Fibonacci integer range").

/// Bits as '0'/'1' to base64url, zero-padded to whole characters.
pub(crate) fn base64url_from_bits(bits: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let clean: Vec<u8> = bits.bytes().filter(|b| *b == b'0' || *b == b'1').collect();
    clean
        .chunks(6)
        .map(|chunk| {
            let v = chunk
                .iter()
                .enumerate()
                .fold(0usize, |v, (i, b)| v | (usize::from(*b == b'1') << (5 - i)));
            ALPHABET[v] as char
        })
        .collect()
}

/// Append `value` as `width` bits, most significant first.
pub(crate) fn push_uint(out: &mut String, value: u64, width: usize) {
    for i in (0..width).rev() {
        out.push(if (value >> i) & 1 == 1 { '1' } else { '0' });
    }
}

/// Append a flag field: id k (1-based) at position k − 1.
pub(crate) fn push_flags(out: &mut String, ids: &[u8], width: usize) {
    for k in 1..=width {
        out.push(if ids.contains(&(k as u8)) { '1' } else { '0' });
    }
}

/// Fields of a TCF v2 core segment.
#[derive(Debug, Clone)]
pub(crate) struct TcFields {
    pub created_ds: u64,
    pub last_updated_ds: u64,
    pub cmp_id: u16,
    pub cmp_version: u16,
    pub consent_screen: u8,
    pub language: [u8; 2],
    pub vendor_list_version: u16,
    pub policy_version: u8,
    pub service_specific: bool,
    pub non_standard_texts: bool,
    pub special_features: Vec<u8>,
    pub purposes: Vec<u8>,
    pub purposes_li: Vec<u8>,
    pub purpose_one_treatment: bool,
    pub publisher_cc: [u8; 2],
    /// Vendor consents, written as a bitfield.
    pub vendors: Vec<u16>,
    /// Vendor legitimate interests, written as ranges (one entry per id).
    pub vendors_li: Vec<u16>,
    /// Publisher restrictions: purpose, type, vendor ids.
    pub restrictions: Vec<(u8, u8, Vec<u16>)>,
}

impl Default for TcFields {
    fn default() -> Self {
        TcFields {
            // 2024-03-01T00:00:00Z in deciseconds.
            created_ds: 17_092_512_000,
            last_updated_ds: 17_092_512_000,
            cmp_id: 7,
            cmp_version: 1,
            consent_screen: 1,
            language: *b"EN",
            vendor_list_version: 150,
            policy_version: 4,
            service_specific: true,
            non_standard_texts: false,
            special_features: vec![],
            purposes: vec![],
            purposes_li: vec![],
            purpose_one_treatment: false,
            publisher_cc: *b"DE",
            vendors: vec![],
            vendors_li: vec![],
            restrictions: vec![],
        }
    }
}

impl TcFields {
    /// The consent for `purposes` and vendors `vendors`.
    pub(crate) fn consenting(purposes: &[u8], vendors: &[u16]) -> TcFields {
        TcFields {
            purposes: purposes.to_vec(),
            vendors: vendors.to_vec(),
            ..TcFields::default()
        }
    }

    /// Encode the core segment.
    pub(crate) fn encode(&self) -> String {
        let mut b = String::new();
        push_uint(&mut b, 2, 6);
        push_uint(&mut b, self.created_ds, 36);
        push_uint(&mut b, self.last_updated_ds, 36);
        push_uint(&mut b, self.cmp_id.into(), 12);
        push_uint(&mut b, self.cmp_version.into(), 12);
        push_uint(&mut b, self.consent_screen.into(), 6);
        for l in self.language {
            push_uint(&mut b, u64::from(l - b'A'), 6);
        }
        push_uint(&mut b, self.vendor_list_version.into(), 12);
        push_uint(&mut b, self.policy_version.into(), 6);
        push_uint(&mut b, self.service_specific.into(), 1);
        push_uint(&mut b, self.non_standard_texts.into(), 1);
        push_flags(&mut b, &self.special_features, 12);
        push_flags(&mut b, &self.purposes, 24);
        push_flags(&mut b, &self.purposes_li, 24);
        push_uint(&mut b, self.purpose_one_treatment.into(), 1);
        for l in self.publisher_cc {
            push_uint(&mut b, u64::from(l - b'A'), 6);
        }
        // Vendor consents: bitfield.
        let max = self.vendors.iter().copied().max().unwrap_or(0);
        push_uint(&mut b, max.into(), 16);
        push_uint(&mut b, 0, 1);
        for id in 1..=max {
            b.push(if self.vendors.contains(&id) { '1' } else { '0' });
        }
        // Vendor legitimate interests: range encoding, one single-id entry per vendor.
        let max_li = self.vendors_li.iter().copied().max().unwrap_or(0);
        push_uint(&mut b, max_li.into(), 16);
        push_uint(&mut b, 1, 1);
        push_uint(&mut b, self.vendors_li.len() as u64, 12);
        for id in &self.vendors_li {
            push_uint(&mut b, 0, 1);
            push_uint(&mut b, (*id).into(), 16);
        }
        // Publisher restrictions.
        push_uint(&mut b, self.restrictions.len() as u64, 12);
        for (purpose, ty, vendors) in &self.restrictions {
            push_uint(&mut b, (*purpose).into(), 6);
            push_uint(&mut b, (*ty).into(), 2);
            push_uint(&mut b, vendors.len() as u64, 12);
            for id in vendors {
                push_uint(&mut b, 0, 1);
                push_uint(&mut b, (*id).into(), 16);
            }
        }
        base64url_from_bits(&b)
    }
}

/// A Fibonacci code (Zeckendorf, least significant term first, then the terminating 1).
pub(crate) fn fibonacci_bits(mut n: u64) -> String {
    let mut fibs = vec![1u64, 2];
    while fibs[fibs.len() - 1] <= n {
        let next = fibs[fibs.len() - 1] + fibs[fibs.len() - 2];
        fibs.push(next);
    }
    let mut bits = vec!['0'; fibs.len()];
    for i in (0..fibs.len()).rev() {
        if fibs[i] <= n {
            bits[i] = '1';
            n -= fibs[i];
        }
    }
    while bits.last() == Some(&'0') {
        bits.pop();
    }
    let mut s: String = bits.into_iter().collect();
    s.push('1');
    s
}

/// A GPP header listing `ids` (ascending), each as a single-id entry.
pub(crate) fn gpp_header(ids: &[u16]) -> String {
    let mut b = String::new();
    push_uint(&mut b, 3, 6);
    push_uint(&mut b, 1, 6);
    push_uint(&mut b, ids.len() as u64, 12);
    let mut last = 0u16;
    for id in ids {
        b.push('0');
        b.push_str(&fibonacci_bits(u64::from(id - last)));
        last = *id;
    }
    // The IAB encoders pad the header to whole bytes before writing characters.
    while b.len() % 8 != 0 {
        b.push('0');
    }
    base64url_from_bits(&b)
}

#[test]
fn test_encoders_reproduce_reference_headers() {
    // iabgpp-java GppModelTest: "DBABTA" lists [6], "DBACNYA" lists [2, 6], "DBAA" none.
    assert_eq!(gpp_header(&[6]), "DBABTA");
    assert_eq!(gpp_header(&[2, 6]), "DBACNYA");
    assert_eq!(gpp_header(&[]), "DBAA");
}
