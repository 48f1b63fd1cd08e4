#!/usr/bin/env bash
# Builds the interop vectors in this directory with the openssl CLI and python3's standard library
# only, independently of the crate's own signing code. Rerunnable: keys are generated only when
# absent, and everything derived from them (key shapes, signatures, bodies) is deterministic,
# because RSA PKCS#1 v1.5 signatures are. Commit the outputs; tests/interop.rs reads them.
#
#   tests/vectors/make.sh            # from anywhere
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v openssl >/dev/null || { echo "make.sh: openssl CLI not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "make.sh: python3 not found" >&2; exit 1; }

# The two RSA-2048 key pairs: the merchant's "app" key and the "alipay" platform key.
for who in app alipay; do
  if [[ ! -f ${who}_private_pkcs8.pem ]]; then
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${who}_private_pkcs8.pem"
  fi
done

# Every shape a key is pasted in: PEM PKCS#8 / PKCS#1 / SPKI, and the bare one-line base64 that
# Alipay's console and key tool show (no armour, no newlines).
openssl rsa -in app_private_pkcs8.pem -traditional -out app_private_pkcs1.pem 2>/dev/null
openssl pkey -in app_private_pkcs8.pem -pubout -out app_public_spki.pem
openssl pkey -in alipay_private_pkcs8.pem -pubout -out alipay_public_spki.pem
openssl rsa -in alipay_private_pkcs8.pem -RSAPublicKey_out -out alipay_public_pkcs1.pem 2>/dev/null

bare() { grep -v -- '-----' "$1" | tr -d '\r\n'; }
bare app_private_pkcs1.pem >app_private_pkcs1.b64
bare app_private_pkcs8.pem >app_private_pkcs8.b64
bare alipay_public_spki.pem >alipay_public_spki.b64

# Sanity: the armour labels are the ones each shape must carry.
grep -q -- '-----BEGIN PRIVATE KEY-----' app_private_pkcs8.pem
grep -q -- '-----BEGIN RSA PRIVATE KEY-----' app_private_pkcs1.pem
grep -q -- '-----BEGIN PUBLIC KEY-----' alipay_public_spki.pem
grep -q -- '-----BEGIN RSA PUBLIC KEY-----' alipay_public_pkcs1.pem

# A request-style sign string signed by openssl with the app key, so a test can compare our
# signer byte for byte without calling openssl.
printf '%s' 'app_id=2021000000000001&biz_content={"out_trade_no":"T20261128001","total_amount":"12.34","subject":"测试 a+b&c=d%20 😀","product_code":"FAST_INSTANT_TRADE_PAY"}&charset=utf-8&format=JSON&method=alipay.trade.page.pay&sign_type=RSA2&timestamp=2026-11-29 00:30:05&version=1.0' >app_signed_content.txt
openssl dgst -sha256 -sign app_private_pkcs8.pem -out app_signed_content.sig app_signed_content.txt
openssl base64 -A -in app_signed_content.sig >app_signed_content.sig.b64
rm app_signed_content.sig

# Notification and return_url vectors, signed with the alipay key.
python3 make_notifies.py

# Made by real implementations from PyPI, in one throwaway virtualenv: Standard Webhooks signatures
# by the reference implementation (standardwebhooks), and wap, app and precreate requests by
# fzlee's python-alipay-sdk, the SDK the original tutorial uses (products.json).
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
venv="$tmp/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q standardwebhooks==1.3.0 python-alipay-sdk==3.4.0
"$venv/bin/python" make_webhooks.py
"$venv/bin/python" make_products.py

# Certificate SNs (certs/, certs.json) by the JDK and npm's alipay-sdk: needs java, node and npm.
./make_certs.sh

echo "vectors written to $(pwd)"
