#!/usr/bin/env bash
# Builds the certificate-SN vectors (certs.json) for Alipay's "public-key certificate mode":
# certificates made with the openssl CLI only, their SNs computed by two real implementations,
# not by this crate: the JDK (CertSn.java, the exact logic of alipay-sdk-java-all's
# AntCertificationUtil.getCertSN / getRootCertSN) and the npm package alipay-sdk@4.14.0
# (cert_sn.mjs, its own antcertutil.getSN / getSNFromPath on @fidm/x509).
#
# Rerunnable: keys are generated into certs/ only when absent (the leaves reuse this directory's
# app and alipay keys); every certificate has a fixed issuer DN, serial and validity
# (2020-01-01 .. 2099-12-31), so SNs never change, and RSA signatures are deterministic, so the
# RSA certificates come out byte-identical. An ECDSA signature is not, so a certificate whose
# content (everything but the signature) is unchanged is kept as it was.
#
#   tests/vectors/make_certs.sh      # from anywhere; needs openssl, java (17+), node (18+), npm
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in openssl java node npm; do
  command -v "$tool" >/dev/null || { echo "make_certs.sh: $tool not found" >&2; exit 1; }
done
[[ -f app_private_pkcs8.pem && -f alipay_private_pkcs8.pem ]] \
  || { echo "make_certs.sh: run make.sh first (app/alipay keys missing)" >&2; exit 1; }

mkdir -p certs
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

rsa_key() { [[ -f $1 ]] || openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
ec_key() {
  [[ -f $1 ]] || openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1"
}

# Our own minimal configs, so the system openssl.cnf plays no part. `openssl ca` (not x509 -req)
# because it alone takes fixed -startdate/-enddate in OpenSSL 3.0; -preserveDN keeps the request's
# DN exactly as encoded (order, multi-valued RDNs, string types, emailAddress).
cat >"$work/req.cnf" <<'EOF'
[ req ]
distinguished_name = req_dn
string_mask = utf8only
[ req_dn ]
EOF
cat >"$work/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $work/index.txt
new_certs_dir = $work/issued
serial = $work/serial
policy = policy_any
unique_subject = no
email_in_dn = yes
copy_extensions = none
[ policy_any ]
commonName = optional
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
mkdir "$work/issued"

# issue NAME KEY SUBJECT SERIAL_HEX EXTENSIONS DIGEST ISSUER [openssl req options...]
#   Writes certs/NAME.crt for KEY's public key. ISSUER is "self" or the NAME of a CA made before
#   (certs/ISSUER.crt, certs/ISSUER.key). SERIAL_HEX: an even number of hex digits.
issue() {
  local name=$1 key=$2 subj=$3 serial=$4 ext=$5 md=$6 issuer=$7
  shift 7
  local signer=(-selfsign -keyfile "$key")
  [[ $issuer == self ]] || signer=(-cert "certs/$issuer.crt" -keyfile "certs/$issuer.key")
  openssl req -new -config "$work/req.cnf" -key "$key" -subj "$subj" "$@" -out "$work/req.csr"
  printf '%s\n' "$serial" >"$work/serial"
  : >"$work/index.txt"
  if ! openssl ca -batch -config "$work/ca.cnf" "${signer[@]}" -in "$work/req.csr" \
      -out "$work/new.crt" -notext -preserveDN -md "$md" -extensions "$ext" \
      -startdate 20200101000000Z -enddate 20991231235959Z >"$work/ca.log" 2>&1; then
    cat "$work/ca.log" >&2
    exit 1
  fi
  # Keep an existing file whose content apart from the signature is the same (ECDSA).
  if [[ -f certs/$name.crt ]] && cmp -s \
      <(openssl x509 -in "certs/$name.crt" -noout -text -certopt no_sigdump) \
      <(openssl x509 -in "$work/new.crt" -noout -text -certopt no_sigdump); then
    return
  fi
  openssl x509 -in "$work/new.crt" -out "certs/$name.crt"
}

for k in root_rsa root_rsa_sha1 intermediate ca_st_l ca_special ca_utf8 ca_email ca_multivalue; do
  rsa_key "certs/$k.key"
done
ec_key certs/root_ec.key

ANT='/C=CN/O=Test Ant Financial/OU=Certification Authority'

# a. RSA root, sha256WithRSA, decimal serial 1001 (0x03E9).
issue root_rsa certs/root_rsa.key "$ANT/CN=Test Root R1" 03E9 v3_root sha256 self
# b. RSA root, sha1WithRSA (1.2.840.113549.1.1.5), serial with the high bit set: DER 00 F3 A1 ...
issue root_rsa_sha1 certs/root_rsa_sha1.key '/C=CN/O=Test Legacy Trust/CN=Test Legacy Root SHA1' \
  F3A1B2C3D4E5F60718293A4B5C6D7E8F v3_root sha1 self
# c. ECDSA P-256 root, ecdsa-with-SHA256: never part of the root SN.
issue root_ec certs/root_ec.key "$ANT/CN=Test Root E1" 0BBB v3_root sha256 self
# d. Intermediate CA under a, serial 0x8A5E0C1D2B3F4E5A (DER 00 8A ...).
issue intermediate certs/intermediate.key "$ANT/CN=Test Class 2 R1" 8A5E0C1D2B3F4E5A v3_ca sha256 root_rsa
# e. The "alipay" public-key certificate under d for alipay_private_pkcs8.pem, serial > 2^64.
issue alipay_cert alipay_private_pkcs8.pem \
  '/C=CN/O=Test Alipay/OU=Alipay Open Platform/CN=2021000000000001' \
  1A2B3C4D5E6F708192A3B4C5D6E7F809 v3_leaf sha256 intermediate
# g. The merchant's "app" certificate under d for app_private_pkcs8.pem, decimal serial 20261204.
issue app_cert app_private_pkcs8.pem \
  '/C=CN/O=Test Merchant/OU=Alipay Open Platform/CN=2021000000000001' \
  "$(printf '%08X' 20261204)" v3_leaf sha256 intermediate
# Serial 1188 under d: Java's SN for it has three leading zero hex digits (0003e1...), so it checks
# zero padding (BigInteger.toString(16) drops them; the SDKs pad back to 32).
issue leading_zero_sn app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Leading Zero SN' \
  "$(printf '%04X' 1188)" v3_leaf sha256 intermediate

# h. Issuer with ST and L (and OU).
issue ca_st_l certs/ca_st_l.key \
  '/C=CN/ST=Zhejiang/L=Hangzhou/O=Test Ant Financial/OU=Certification Authority/CN=Test Regional CA' \
  "$(printf '%04X' 4004)" v3_ca sha256 root_rsa
issue issuer_with_st_l app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Issuer With ST L' \
  "$(printf '%04X' 5005)" v3_leaf sha256 ca_st_l

# i. Issuer whose DN needs RFC 2253 escaping: , + " \ ; < > a leading # and leading/trailing
#    spaces, a multi-valued RDN (OU=Multi A+CN=Multi B) and emailAddress (an OID without an RFC 2253
#    keyword: Java prints 1.2.840.113549.1.9.1=#16...). In -subj, \ escapes the next character and,
#    with -multivalue-rdn, an unescaped + joins two attributes into one RDN.
issue ca_special certs/ca_special.key \
  '/C=CN/O=Test "Quoted" Org, Inc./OU=R\+D; Dept <Special>/OU=#Hash First/OU=Multi A+CN=Multi B/CN= Back\\slash CA /emailAddress=ca@example.com' \
  "$(printf '%04X' 6006)" v3_ca sha256 root_rsa -multivalue-rdn
issue issuer_special_chars app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Issuer Special Chars' \
  "$(printf '%04X' 6007)" v3_leaf sha256 ca_special

# j. Issuer with UTF-8 (Chinese) values.
issue ca_utf8 certs/ca_utf8.key '/C=CN/ST=浙江省/L=杭州市/O=蚂蚁测试科技有限公司/OU=证书中心/CN=测试中级证书 CA' \
  "$(printf '%04X' 7007)" v3_ca sha256 root_rsa -utf8
issue issuer_utf8 app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Issuer UTF-8' \
  "$(printf '%04X' 7008)" v3_leaf sha256 ca_utf8

# The two hard parts of i on their own, so a mismatch can be told apart: emailAddress only, and a
# multi-valued RDN only (plain values otherwise).
issue ca_email certs/ca_email.key "$ANT/CN=Test Email CA/emailAddress=ca@example.com" \
  "$(printf '%04X' 8008)" v3_ca sha256 root_rsa
issue issuer_email app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Issuer Email' \
  "$(printf '%04X' 8009)" v3_leaf sha256 ca_email
issue ca_multivalue certs/ca_multivalue.key '/C=CN/O=Test Ant Financial/OU=Multi A+CN=Multi B' \
  "$(printf '%04X' 9009)" v3_ca sha256 root_rsa -multivalue-rdn
issue issuer_multivalue app_private_pkcs8.pem '/C=CN/O=Test Merchant/CN=Issuer Multi-valued RDN' \
  "$(printf '%04X' 9010)" v3_leaf sha256 ca_multivalue

# f. The alipay certificate followed by its issuing CA, as alipayCertPublicKey_RSA2.crt ships.
cat certs/alipay_cert.crt certs/intermediate.crt >certs/alipay_cert_chain.crt

# Root bundles: a, c, b in this order (the joined root SN follows file order and skips c).
roots=(certs/root_rsa.crt certs/root_ec.crt certs/root_rsa_sha1.crt)
cat "${roots[@]}" >certs/root_bundle.crt
{ cat "${roots[0]}"; echo; cat "${roots[1]}"; printf '\n\n'; cat "${roots[2]}"; } >certs/root_bundle_blank_lines.crt
sed 's/$/\r/' certs/root_bundle.crt >certs/root_bundle_crlf.crt
# Trailing blanks on every line (BEGIN " ", base64 tab, END " tab "), then blank lines holding
# whitespace and a last line of spaces with no newline.
{ sed -e 's/^-----BEGIN.*$/& /' -e 's/^[A-Za-z0-9+/=]*$/&\t/' -e 's/^-----END.*$/& \t /' certs/root_bundle.crt
  printf '\n \n\t\n  '; } >certs/root_bundle_trailing_ws.crt
cp certs/root_ec.crt certs/root_bundle_ec_only.crt

# The SNs: Java first, then alipay-sdk from npm in a throwaway directory, merged into certs.json.
files=(certs/*.crt)
java CertSn.java "${files[@]}" >"$work/java.json"
npm install --prefix "$work/npm" --no-audit --no-fund --no-save --silent alipay-sdk@4.14.0 >/dev/null
node cert_sn.mjs "$work/npm/node_modules" "$work/java.json" >"$work/certs.json"
mv "$work/certs.json" certs.json

echo "certificate vectors written to $(pwd)/certs.json"
