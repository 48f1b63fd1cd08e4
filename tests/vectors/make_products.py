"""Wap, app and precreate requests made by a real Alipay SDK, fzlee's `python-alipay-sdk` (PyPI,
the SDK the original tutorial uses), not by our code: tests/interop/products.rs checks that our
sign-string rules, our signer and our builders agree with it byte for byte.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install python-alipay-sdk==3.4.0
    /tmp/v/bin/python tests/vectors/make_products.py

Deterministic: the SDK's clock is frozen at TIMESTAMP, and RSA PKCS#1 v1.5 signatures are
deterministic. Writes `products.json`:

- `named_api`: what the SDK's own product methods make (`api_alipay_trade_wap_pay`,
  `api_alipay_trade_app_pay`, `api_alipay_trade_precreate`, whose HTTP call is caught), with
  the parameters it signed, its sign string and its `sign`.
- `our_layout`: the SDK's generic `client_api` signing the parameter set our builders send
  (`format=JSON` added, biz_content written here in our key order with non-ASCII kept raw), so a
  test can ask our builders for the same request and compare every byte of the signature.

What the SDK (3.4.0, read from its source) does differently from our builders, and why the
comparison is still exact:
- It sends no `format` parameter (optional at Alipay, default JSON); we send `format=JSON`. The
  parameter is signed, so `named_api` signatures cannot equal ours: tests compare every other
  parameter exactly, and `our_layout` carries `format` so its signature can.
- biz_content is `json.dumps(dict, separators=(',', ':'))`: the SDK's key order (subject,
  out_trade_no, total_amount, product_code, then the extras) and `ensure_ascii`, so 测试 travels
  as `\\u6d4b\\u8bd5` and 😀 as the surrogate pair `\\ud83d\\ude00`. Ours is serde's order of our
  struct with UTF-8 kept raw. The same JSON value, different text: the tests compare it parsed,
  and `our_layout` passes our exact text (a string, which the SDK signs as it is).
- Amounts go into biz_content with whatever Python type the caller passes: a float 12.34 would be
  the JSON number 12.34. We pass the string "12.34", as Alipay documents and as we send.
- Its default product codes: wap `QUICK_WAP_PAY` (Alipay documents `QUICK_WAP_WAY`, which we
  send), precreate none (optional; we send `FACE_TO_FACE_PAYMENT`), app `QUICK_MSECURITY_PAY`
  (the same). Extra keyword arguments override them, so the vectors pass ours;
  `sdk_default_product_code` records the SDK's own choice.
- Transport: `quote_plus`, so a space is `+` (ours `%20`); `+` in `sign` is `%2B` in both. The
  order string is sorted by key, `sign` last; ours is in a fixed order of our own.
- Its timestamp is `datetime.now()`, the host's zone (ours is always Beijing time); frozen here.
- It sends precreate as a GET with every parameter in the URL query; our client POSTs with
  biz_content alone in the form body. The signed parameters are the same.
- It never drops empty values other than notify_url/return_url; none of ours are empty.
"""
import base64
import datetime
import json
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qsl

import alipay
from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import PKCS1_v1_5

HERE = Path(__file__).parent
SDK = "python-alipay-sdk"
TIMESTAMP = "2026-11-29 00:30:05"  # Beijing time; 2026-11-28 16:30:05 UTC
INPUTS = {
    "app_id": "2021000000000001",
    "gateway": "https://openapi.alipay.com/gateway.do",
    "notify_url": "https://shop.example.com/alipay/notify?x=1&y=2",
    "return_url": "https://shop.example.com/orders/T20261128001",
    "quit_url": "https://shop.example.com/orders/T20261128001?from=wap&back=1",
    "out_trade_no": "T20261128001",
    "subject": "测试 a+b&c=d%20 😀",
    "body": "one  coffee, 100% arabica + milk",
    "total_amount": "12.34",
    "time_expire": "2026-11-29 01:00:05",
    "timestamp": TIMESTAMP,
}
PRODUCTS = {
    # product: (method, SDK method, our product_code)
    "wap": ("alipay.trade.wap.pay", "api_alipay_trade_wap_pay", "QUICK_WAP_WAY"),
    "app": ("alipay.trade.app.pay", "api_alipay_trade_app_pay", "QUICK_MSECURITY_PAY"),
    "qr": ("alipay.trade.precreate", "api_alipay_trade_precreate", "FACE_TO_FACE_PAYMENT"),
}
PRECREATE_NODE = ('{"code":"10000","msg":"Success","out_trade_no":"T20261128001",'
                  '"qr_code":"https://qr.alipay.com/bax03431ljhokirwl38f00a7"}')


class FrozenDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.strptime(TIMESTAMP, "%Y-%m-%d %H:%M:%S")


alipay.datetime = FrozenDatetime  # the SDK's `from datetime import datetime`


def signed_response(node):
    """A precreate response signed over its raw node text with the "alipay" key."""
    key = RSA.import_key((HERE / "alipay_private_pkcs8.pem").read_text())
    sign = PKCS1_v1_5.new(key).sign(SHA256.new(node.encode()))
    return '{"alipay_trade_precreate_response":%s,"sign":"%s"}' % (
        node, base64.b64encode(sign).decode())


class FakeResponse:
    def __init__(self, text):
        self.text = text

    def read(self):
        return self.text.encode()


class Spy:
    """Records what the SDK signs and what it would send over HTTP."""

    def __init__(self, sdk):
        self.sign_strings, self.params, self.requests = [], [], []
        sign, sign_data = sdk._sign, sdk.sign_data

        def spy_sign(unsigned):
            self.sign_strings.append(unsigned)
            return sign(unsigned)

        def spy_sign_data(data):
            out = sign_data(data)  # turns a dict biz_content into its JSON text, in place
            self.params.append(sorted(data.items()))
            return out

        def spy_urlopen(url, data=None, timeout=None):
            self.requests.append({"http_method": "GET" if data is None else "POST",
                                  "url": url, "body": data})
            return FakeResponse(signed_response(PRECREATE_NODE))

        sdk._sign, sdk.sign_data = spy_sign, spy_sign_data
        alipay.urlopen = spy_urlopen  # imported into the SDK's module from its compat


def new_sdk():
    return alipay.AliPay(
        appid=INPUTS["app_id"],
        app_notify_url=None,
        app_private_key_string=(HERE / "app_private_pkcs8.pem").read_text(),
        alipay_public_key_string=(HERE / "alipay_public_spki.pem").read_text(),
        sign_type="RSA2",
    )


def call_named_api(product, **overrides):
    """The SDK's own method for `product`, as its README calls it; returns (entry, spy)."""
    method, api, _ = PRODUCTS[product]
    sdk = new_sdk()
    spy = Spy(sdk)
    extras = {"body": INPUTS["body"], "time_expire": INPUTS["time_expire"], **overrides}
    common = {"subject": INPUTS["subject"], "out_trade_no": INPUTS["out_trade_no"],
              "total_amount": INPUTS["total_amount"], "notify_url": INPUTS["notify_url"]}
    if product == "wap":
        output = sdk.api_alipay_trade_wap_pay(return_url=INPUTS["return_url"],
                                              quit_url=INPUTS["quit_url"], **common, **extras)
    else:
        output = getattr(sdk, api)(**common, **extras)
    return output, spy


def entry(product, method, api, output, spy, biz_content):
    [sign_string], [params] = spy.sign_strings, spy.params
    params = dict(params)
    record = {"product": product, "method": method, "sdk_call": api,
              "biz_content": biz_content, "params": params, "sign_string": sign_string}
    if spy.requests:
        [request] = spy.requests
        record.update(request)
        record["response"] = signed_response(PRECREATE_NODE)
        query = request["url"].split("?", 1)[1]
    else:
        record["output"] = output
        query = output
        if product == "wap":
            record["url"] = INPUTS["gateway"] + "?" + output
    decoded = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    assert decoded[:-1] == sorted(params.items()), (product, decoded)
    assert decoded[-1][0] == "sign", decoded[-1]  # the SDK appends it last
    record["sign"] = decoded[-1][1]
    expected = "&".join(k + "=" + v for k, v in sorted(params.items()))
    assert sign_string == expected, (sign_string, expected)
    return record


def named_api(product):
    method, api, code = PRODUCTS[product]
    _, default_spy = call_named_api(product)
    default_biz = json.loads(dict(default_spy.params[0])["biz_content"])
    output, spy = call_named_api(product, product_code=code)
    record = entry(product, method, api, output, spy, dict(spy.params[0])["biz_content"])
    record["sdk_default_product_code"] = default_biz.get("product_code")
    return record


def our_biz_content(product):
    """biz_content as our builders write it: serde's order of our struct, UTF-8 raw."""
    biz = {"out_trade_no": INPUTS["out_trade_no"], "total_amount": INPUTS["total_amount"],
           "subject": INPUTS["subject"], "product_code": PRODUCTS[product][2],
           "body": INPUTS["body"], "time_expire": INPUTS["time_expire"]}
    if product == "wap":
        biz["quit_url"] = INPUTS["quit_url"]
    return json.dumps(biz, ensure_ascii=False, separators=(",", ":"))


def our_layout(product):
    method = PRODUCTS[product][0]
    sdk = new_sdk()
    spy = Spy(sdk)
    biz = our_biz_content(product)
    urls = {"notify_url": INPUTS["notify_url"]}
    if product == "wap":
        urls["return_url"] = INPUTS["return_url"]
    output = sdk.client_api(method, biz, format="JSON", **urls)
    record = entry(product, method, "client_api", output, spy, biz)
    record.pop("url", None)
    return record


def main():
    vectors = {
        "sdk": {"name": SDK, "version": version(SDK)},
        "inputs": INPUTS,
        "named_api": [named_api(p) for p in PRODUCTS],
        "our_layout": [our_layout(p) for p in PRODUCTS],
    }
    # The SDK must accept its own requests' signatures and the fake gateway's response.
    app_public = RSA.import_key((HERE / "app_public_spki.pem").read_text())
    for record in vectors["named_api"] + vectors["our_layout"]:
        digest = SHA256.new(record["sign_string"].encode())
        assert PKCS1_v1_5.new(app_public).verify(digest, base64.b64decode(record["sign"]))
    text = json.dumps(vectors, ensure_ascii=False, indent=1) + "\n"
    (HERE / "products.json").write_text(text, encoding="utf-8")
    print("products.json written")


if __name__ == "__main__":
    main()
