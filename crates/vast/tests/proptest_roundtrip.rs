//! Random valid models round-trip: write → parse gives the model back, and every written document
//! validates against vast_4.2.xsd (xmllint). "Valid" is what the model can say and VAST 4.2 can carry:
//! trimmed text (the reader trims), non-empty optional values (an empty one reads as absent), no
//! placeholder values (`about:blank`, `unknown`), times inside `xs:time`, URIs without literal macros
//! (libxml2's xs:anyURI refuses `[`; see tests/macros.rs).

mod common;
mod strategies;

use interlude_vast::{parse_vast, write_vast};
use proptest::prelude::*;
use strategies::vast;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_models_survive_write_and_parse_and_write_valid_vast_4_2(model in vast()) {
        let written = write_vast(&model).expect("a valid model is writable");
        let reread = parse_vast(&written).expect("written VAST parses");
        prop_assert_eq!(&reread, &model, "document:\n{}", written);
        common::assert_valid_vast_4_2(&written);
    }
}
