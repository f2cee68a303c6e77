//! Property tests: request bodies of any bytes get an answer, never a panic.

use bytes::Bytes;
use proptest::prelude::*;
use tranquility::event::Destination;
use tranquility_server::decode::{decode, decompress, parse_async, BodyFormat};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_and_smile_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let body = Bytes::from(body);
        let _ = decode(BodyFormat::Json, &body);
        let _ = decode(BodyFormat::Smile, &body);
        let _ = Destination::of(&body);
    }

    #[test]
    fn smile_like_bodies_never_panic(tail in prop::collection::vec(any::<u8>(), 0..128)) {
        // Start with a valid Smile header so the fuzzing reaches the value decoder.
        let mut body = b":)\n\x00".to_vec();
        body.extend(tail);
        let _ = decode(BodyFormat::Smile, &Bytes::from(body));
    }

    #[test]
    fn json_like_bodies_never_panic(text in r#"[\[\]{}",:0-9a-z\\ \n-]{0,200}"#) {
        let _ = decode(BodyFormat::Json, &Bytes::from(text));
    }

    #[test]
    fn encodings_and_flags_never_panic(
        encoding in ".{0,12}",
        flag in ".{0,8}",
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let _ = decompress(Some(&encoding), Bytes::from(body.clone()), 1024);
        let mut gz = vec![0x1f, 0x8b, 0x08, 0x00];
        gz.extend(body);
        let _ = decompress(Some("gzip"), Bytes::from(gz), 1024);
        let _ = parse_async(Some(&flag));
        let _ = BodyFormat::from_content_type(Some(&encoding));
    }
}
