// Adds the npm alipay-sdk's certificate SNs to CertSn.java's output and writes certs.json, for
// make_certs.sh:
//
//   node cert_sn.mjs NODE_MODULES_DIR java.json > certs.json
//
// NODE_MODULES_DIR holds alipay-sdk@4.14.0. Its cert utilities (antcertutil: getSN, getSNFromPath,
// with isRoot for the root bundle) are not exported from the package root, so the module is
// imported by path. node.issuer is the string the SDK hashes, rebuilt with its own code on its own
// @fidm/x509 parse (attributes reversed, `shortName=value` joined with ",", no escaping), and
// checked against the SDK's SN; it is there to explain differences from Java's RFC 2253 name.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [nodeModules, javaJson] = process.argv.slice(2);
if (!nodeModules || !javaJson) {
  console.error('usage: node cert_sn.mjs NODE_MODULES_DIR java.json');
  process.exit(2);
}
const sdkDir = path.resolve(nodeModules, 'alipay-sdk');
const sdkRequire = createRequire(path.join(sdkDir, 'package.json'));
const sdkVersion = sdkRequire('./package.json').version;
if (sdkVersion !== '4.14.0') throw new Error(`expected alipay-sdk 4.14.0, found ${sdkVersion}`);
const fidmVersion = sdkRequire('@fidm/x509/package.json').version;
const { getSN, getSNFromPath } = await import(pathToFileURL(path.join(sdkDir, 'dist/esm/antcertutil.js')));
const { Certificate } = sdkRequire('@fidm/x509');
const { BigNumber } = sdkRequire('bignumber.js');

const md5 = (s) => createHash('md5').update(s, 'utf8').digest('hex');
const pem = (der) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;

// The SDK's getCertSN, minus the hash: what it feeds to MD5.
function sdkSource(cert) {
  const issuer = cert.issuer.attributes
    .reduceRight((prev, { shortName, value }) => `${prev}${shortName}=${value},`, '')
    .slice(0, -1);
  return { issuer, serial: new BigNumber(cert.serialNumber, 16).toString(10) };
}

function single(file) {
  const sn = getSNFromPath(file, false);
  const cert = Certificate.fromPEM(fs.readFileSync(file));
  const { issuer, serial } = sdkSource(cert);
  if (md5(issuer + serial) !== sn) throw new Error(`${file}: rebuilt SDK input does not give the SDK's SN`);
  return { issuer, serial, sn };
}

function bundle(file) {
  const rootSn = getSNFromPath(file, true);
  // Per certificate, each through the SDK's own getSN, with the SDK's RSA filter.
  const certs = Certificate.fromPEMs(fs.readFileSync(file));
  const sigAlgOids = certs.map((c) => c.signatureOID);
  const sns = certs.map((c) => (c.signatureOID.startsWith('1.2.840.113549.1.1') ? getSN(pem(c.raw), false) : null));
  if (sns.filter((s) => s !== null).join('_') !== rootSn) throw new Error(`${file}: per-certificate SNs do not join to the SDK's root SN`);
  return { count: certs.length, sig_alg_oids: sigAlgOids, sns, root_sn: rootSn };
}

const java = JSON.parse(fs.readFileSync(javaJson, 'utf8'));
const files = java.files
  .map((entry) => {
    let node;
    try {
      node = entry.kind === 'root_bundle' ? bundle(entry.file) : single(entry.file);
    } catch (e) {
      node = { error: String(e && e.message ? e.message : e) };
    }
    const out = { file: entry.file, kind: entry.kind };
    if (entry.kind === 'cert' && entry.java.sig_alg_oid) out.sig_alg_oid = entry.java.sig_alg_oid;
    const key = entry.kind === 'root_bundle' ? 'root_sn' : 'sn';
    out.agree = entry.java[key] !== undefined && entry.java[key] === node[key];
    out.java = entry.java;
    out.node = node;
    return out;
  })
  .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

const doc = {
  about:
    'Alipay certificate SNs (app_cert_sn, alipay_cert_sn, alipay_root_cert_sn). java: the JDK, as ' +
    "alipay-sdk-java-all's AntCertificationUtil (the gateway's rule); node: npm alipay-sdk's antcertutil. " +
    'Made by make_certs.sh; agree is false where the two differ (java is the reference).',
  java_version: java.java_version,
  node_version: process.version,
  alipay_sdk: sdkVersion,
  fidm_x509: fidmVersion,
  disagreements: files.filter((f) => !f.agree).map((f) => f.file),
  files,
};
process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
