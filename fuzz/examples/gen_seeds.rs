//! Writes the seed corpora under `fuzz/corpus/` from the fixed key in `fuzz/keys/`:
//! `cargo run --example gen_seeds` in `fuzz/`. Deterministic (RSA PKCS#1 v1.5 signatures are), so
//! rerunning rewrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use alipay_notify::alipay::callback;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::response;
use alipay_notify::alipay::sign::CALLBACK_EXCLUDED;
use alipay_notify_fuzz::{
    expected_sign_content, form_encode, percent_encode_all, public_key, SIGNED_NOTIFIES,
    SIGNED_RESPONSE_NODES,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = PrivateKey::parse(&read(&root.join("keys/alipay_private_pkcs8.pem")))
        .expect("fuzz private key");
    let vectors = vector_bodies(&root.join("../tests/vectors"));

    let mut notifies = Vec::new();
    for notify in SIGNED_NOTIFIES {
        let mut pairs = notify.raw_pairs();
        let sign = key.sign(&expected_sign_content(&pairs, CALLBACK_EXCLUDED));
        pairs.push((b"sign".to_vec(), sign.into_bytes()));
        let body = form_encode(&pairs);
        let raw = RawParams::parse(&body).expect("seed parses");
        callback::verify(&raw, public_key()).expect("seed notify verifies with the fuzz key");
        notifies.push((format!("{}_form", notify.name), body));
        notifies.push((
            format!("{}_percent", notify.name),
            percent_encode_all(&pairs),
        ));
    }
    let form_extras: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("edge_escapes", b"a=1+2%2B3&b=%2525&c=&d&&e=%e4%b8%ad"),
        ("gb2312_label", b"charset=gb2312&subject=%D6%D0%CE%C4"),
        ("gb18030_four_byte", b"charset=GBK&subject=%81%30%81%30"),
        ("gbk_euro", b"charset=gbk&a=%80&b=%A2%E3"),
        ("utf8_bom", b"charset=utf-8&subject=%EF%BB%BF%E4%B8%AD"),
        ("sloppy_charset", b"charset=+UTF-8+&x=%C3%A9"),
    ];
    let extras = form_extras.iter().map(|(n, b)| (n.to_string(), b.to_vec()));
    let all_forms: Vec<(String, Vec<u8>)> = notifies
        .iter()
        .cloned()
        .chain(vectors.clone())
        .chain(extras)
        .collect();
    write(root, "form_decode", &all_forms);
    write(
        root,
        "sign_verify",
        &notifies.into_iter().chain(vectors).collect::<Vec<_>>(),
    );

    let amounts = [
        "12.34",
        "12.3",
        "12",
        "0.01",
        "100000000.00",
        "100000000.01",
        "0",
        "0.00",
        "1.",
        ".5",
        "1e3",
        "-0.01",
        "+1",
        "0.001",
        " 1",
        "1,00",
        "1.2.3",
        "１",
        "999999999999",
        "000000000001.5",
        "9999999999999",
        "18446744073709551616",
    ];
    let amounts: Vec<(String, Vec<u8>)> = amounts
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("amount_{i:02}"), a.as_bytes().to_vec()))
        .collect();
    write(root, "amount_parse", &amounts);
    write(root, "gateway_response", &responses(&key));
}

fn responses(key: &PrivateKey) -> Vec<(String, Vec<u8>)> {
    let [query, query_spaced, refund, not_exist] = SIGNED_RESPONSE_NODES else {
        panic!("four signed nodes expected")
    };
    let signed = |name: &str, node: &str| {
        format!(
            r#"{{"{name}":{node},"sign":"{}"}}"#,
            key.sign(node.as_bytes())
        )
    };
    let mut out = vec![
        ("query_signed", signed("alipay_trade_query_response", query)),
        ("query_spaced_signed", signed("alipay_trade_query_response", query_spaced)),
        ("refund_signed", signed("alipay_trade_refund_response", refund)),
        ("not_exist_signed", signed("alipay_trade_query_response", not_exist)),
        (
            "not_exist_unsigned",
            format!(r#"{{"alipay_trade_query_response":{not_exist}}}"#),
        ),
        (
            "sign_first_with_cert_sn",
            format!(
                r#"{{"sign":"{}","alipay_cert_sn":"e3f0b7","alipay_trade_query_response":{query}}}"#,
                key.sign(query.as_bytes())
            ),
        ),
        (
            "error_response",
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"},"sign":"AAAA"}"#.to_string(),
        ),
        (
            "unsigned_success",
            format!(r#"{{"alipay_trade_query_response":{query}}}"#),
        ),
    ];
    out.push((
        "pretty_printed_signed",
        format!(
            "{{\n  \"alipay_trade_query_response\" : {query} ,\n  \"sign\" : \"{}\"\n}}\n",
            key.sign(query.as_bytes())
        ),
    ));
    for (name, body) in &out {
        let read = response::read::<serde_json::Value>(body, "alipay.trade.query", public_key());
        let expect_ok = name.starts_with("query")
            || name.starts_with("sign_first")
            || name.starts_with("pretty");
        assert_eq!(read.is_ok(), expect_ok, "{name}: {read:?}");
    }
    out.into_iter()
        .map(|(n, b)| (n.to_string(), b.into_bytes()))
        .collect()
}

fn vector_bodies(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut bodies: Vec<PathBuf> = fs::read_dir(dir)
        .expect("tests/vectors")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "body"))
        .collect();
    bodies.sort();
    bodies
        .into_iter()
        .map(|p| {
            let name = format!("vector_{}", p.file_stem().unwrap().to_string_lossy());
            (name, fs::read(&p).expect("vector body"))
        })
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(root: &Path, target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = root.join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed_{name}")), bytes).expect("seed file");
    }
    println!("{target}: {} seeds", seeds.len());
}
