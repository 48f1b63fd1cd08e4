#!/usr/bin/env python3
"""Builds Alipay notify and return_url vectors with python3's standard library and the openssl CLI.

Independent of the crate: the sign string is computed here from the rules in docs/protocol.md
(leave out `sign` and `sign_type`, drop empty values, sort keys by bytes, `k=v` joined by `&`,
raw values in the message's charset), signed by `openssl dgst -sha256 -sign` with the "alipay"
private key, and the body is form-urlencoded by urllib in the declared charset.

Writes, per case: `<case>.body` (the exact bytes Alipay would send), `<case>.signstring` (the exact
bytes that were signed), and one `cases.json` manifest with the expected UTF-8 values.
Run from make.sh; deterministic given the committed keys.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
from urllib.parse import urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNING_KEY = os.path.join(HERE, "alipay_private_pkcs8.pem")
VERIFYING_KEY = os.path.join(HERE, "alipay_public_spki.pem")
CODECS = {"utf-8": "utf-8", "GBK": "gbk", "gb2312": "gb2312"}


def sign_string(params, charset, excluded=("sign", "sign_type")):
    codec = CODECS[charset]
    kept = [
        (k.encode(codec), v.encode(codec))
        for k, v in params
        if k not in excluded and v != ""
    ]
    kept.sort(key=lambda kv: kv[0])
    return b"&".join(k + b"=" + v for k, v in kept)


def openssl_sign(content, digest):
    with tempfile.TemporaryDirectory() as tmp:
        content_path = os.path.join(tmp, "content")
        sig_path = os.path.join(tmp, "sig")
        with open(content_path, "wb") as f:
            f.write(content)
        subprocess.run(
            ["openssl", "dgst", "-" + digest, "-sign", SIGNING_KEY, "-out", sig_path, content_path],
            check=True,
        )
        # Self-check with the public key, so a broken vector never gets committed.
        subprocess.run(
            ["openssl", "dgst", "-" + digest, "-verify", VERIFYING_KEY, "-signature", sig_path, content_path],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(sig_path, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")


def notify(**overrides):
    """A TRADE_SUCCESS notification as Alipay sends it, in Alipay's usual field order."""
    params = {
        "gmt_create": "2026-11-28 15:30:01",
        "charset": "utf-8",
        "seller_email": "merchant@example.com",
        "subject": "Order T20261128001",
        "body": "One cup of coffee",
        "buyer_id": "2088102177846880",
        "invoice_amount": "12.34",
        "notify_id": "2026112800222153002012341234567890",
        "fund_bill_list": '[{"amount":"12.34","fundChannel":"ALIPAYACCOUNT"}]',
        "notify_type": "trade_status_sync",
        "trade_status": "TRADE_SUCCESS",
        "receipt_amount": "12.34",
        "buyer_pay_amount": "12.34",
        "app_id": "2021000000000001",
        "sign_type": "RSA2",
        "seller_id": "2088101117955611",
        "gmt_payment": "2026-11-28 15:30:09",
        "notify_time": "2026-11-28 15:30:10",
        "merchant_app_id": "2021000000000001",
        "version": "1.0",
        "out_trade_no": "T20261128001",
        "total_amount": "12.34",
        "trade_no": "2026112822001446880501234567",
        "auth_app_id": "2021000000000001",
        "buyer_logon_id": "158****1234",
        "point_amount": "0.00",
    }
    params.update(overrides)
    return params


def return_query():
    """The return_url redirect's query: no trade_status, often GBK."""
    return {
        "charset": "GBK",
        "out_trade_no": "T20261128001",
        "method": "alipay.trade.page.pay.return",
        "total_amount": "12.34",
        "trade_no": "2026112822001446880501234567",
        "auth_app_id": "2021000000000001",
        "version": "1.0",
        "app_id": "2021000000000001",
        "sign_type": "RSA2",
        "seller_id": "2088101117955611",
        "timestamp": "2026-11-28 15:30:12",
    }


def build(name, params, kind="notify", digest="sha256", expect="valid", need_plus=False):
    params = dict(params)
    charset = params["charset"]
    codec = CODECS[charset]
    while True:
        content = sign_string(params.items(), charset)
        signature = openssl_sign(content, digest)
        if not need_plus or "+" in signature:
            break
        # Alipay's notify_id is opaque; bump it until the signature has a '+', which a
        # form decoder must read from %2B, never turn into a space.
        params["notify_id"] = str(int(params["notify_id"]) + 1)
    pairs = list(params.items())
    pairs.append(("sign", signature))
    body = urlencode(pairs, encoding=codec).encode("ascii")
    with open(os.path.join(HERE, name + ".body"), "wb") as f:
        f.write(body)
    with open(os.path.join(HERE, name + ".signstring"), "wb") as f:
        f.write(content)
    return {
        "name": name,
        "kind": kind,
        "expect": expect,
        "charset": charset,
        "sign_has_plus": "+" in signature,
        "params": params,
    }


def main():
    special = notify(
        subject="a+b&c=d%20 100%25 测试😀",
        body="  50% off & 1+1=2, %25 stays %25  ",
        passback_params="order%3DT20261128001%26from%3Dmail+x&y=z",
    )
    empty = notify(body="", passback_params="")
    unsorted = dict(sorted(notify().items(), reverse=True))
    gbk = notify(charset="GBK", subject="中文订单 丄丅 测试", body="支付宝 GBK 付款")
    gb2312 = notify(charset="gb2312", subject="测试商品", body="中文")
    rsa1 = notify(sign_type="RSA")

    cases = [
        build("utf8_basic", notify()),
        build("utf8_special_chars", special),
        build("utf8_empty_values", empty),
        build("utf8_unsorted", unsorted),
        build("gbk_chinese", gbk),
        build("gb2312_chinese", gb2312),
        build("sign_with_plus", notify(notify_id="2026112800222153002099990000000000"), need_plus=True),
        build("return_gbk", return_query(), kind="return"),
        # Validly signed, but with SHA1 and sign_type=RSA: RSA2 is fixed, so this must be refused.
        build("rsa1_sha1", rsa1, digest="sha1", expect="reject_sign_type"),
    ]
    with open(os.path.join(HERE, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} vectors written", file=sys.stderr)


if __name__ == "__main__":
    main()
