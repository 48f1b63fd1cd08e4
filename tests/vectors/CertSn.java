// Alipay certificate SNs as the JDK computes them, for make_certs.sh (JDK 11+, no external jars):
//
//   java CertSn.java certs/a.crt certs/root_bundle.crt ... > java.json
//
// Same logic as alipay-sdk-java-all's AntCertificationUtil: SN = lower-case hex MD5, zero-padded to
// 32 digits, of getIssuerX500Principal().getName() (RFC 2253) + getSerialNumber().toString(). A
// root SN (alipay_root_cert_sn) parses every certificate of the bundle, keeps those whose
// getSigAlgOID() starts with 1.2.840.113549.1.1 (RSA), and joins their SNs with "_" in file order.
// Files named root_bundle* are root bundles; any other file is one certificate (the first one in
// it, as CertificateFactory.generateCertificate reads it). The factory gets the file's raw bytes.
//
// Two deliberate differences from the SDK, neither of which changes an SN here: the SDK hashes
// String.getBytes() in the platform charset (UTF-8 here is what the gateway's own JVM uses; only a
// non-ASCII DN could differ), and the SDK asks for the "BC" provider's CertificateFactory while this
// uses the JDK's default ("SUN"); the DN string comes from javax X500Principal either way.
import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

public class CertSn {
    static String sn(X509Certificate c) throws Exception {
        String source = c.getIssuerX500Principal().getName() + c.getSerialNumber();
        MessageDigest md = MessageDigest.getInstance("MD5");
        md.update(source.getBytes(StandardCharsets.UTF_8));
        StringBuilder hex = new StringBuilder(new BigInteger(1, md.digest()).toString(16));
        while (hex.length() < 32) {
            hex.insert(0, '0');
        }
        return hex.toString();
    }

    static String q(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (ch < 0x20) {
                        b.append(String.format("\\u%04x", (int) ch));
                    } else {
                        b.append(ch);
                    }
            }
        }
        return b.append('"').toString();
    }

    static String list(List<String> items) {
        return "[" + String.join(", ", items) + "]";
    }

    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<String> out = new ArrayList<>();
        for (String file : args) {
            byte[] raw = Files.readAllBytes(Path.of(file));
            boolean bundle = Path.of(file).getFileName().toString().startsWith("root_bundle");
            String body;
            try {
                if (bundle) {
                    Collection<? extends Certificate> all = cf.generateCertificates(new ByteArrayInputStream(raw));
                    List<String> oids = new ArrayList<>();
                    List<String> issuers = new ArrayList<>();
                    List<String> serials = new ArrayList<>();
                    List<String> sns = new ArrayList<>();
                    List<String> kept = new ArrayList<>();
                    for (Certificate each : all) {
                        X509Certificate c = (X509Certificate) each;
                        oids.add(q(c.getSigAlgOID()));
                        issuers.add(q(c.getIssuerX500Principal().getName()));
                        serials.add(q(c.getSerialNumber().toString()));
                        if (c.getSigAlgOID().startsWith("1.2.840.113549.1.1")) {
                            String s = sn(c);
                            sns.add(q(s));
                            kept.add(s);
                        } else {
                            sns.add("null");
                        }
                    }
                    body = "{\"count\": " + all.size() + ", \"sig_alg_oids\": " + list(oids)
                            + ", \"issuers\": " + list(issuers) + ", \"serials\": " + list(serials)
                            + ", \"sns\": " + list(sns) + ", \"root_sn\": " + q(String.join("_", kept)) + "}";
                } else {
                    X509Certificate c = (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(raw));
                    body = "{\"sig_alg_oid\": " + q(c.getSigAlgOID())
                            + ", \"issuer\": " + q(c.getIssuerX500Principal().getName())
                            + ", \"serial\": " + q(c.getSerialNumber().toString())
                            + ", \"sn\": " + q(sn(c)) + "}";
                }
            } catch (Exception e) {
                body = "{\"error\": " + q(e.toString()) + "}";
            }
            out.add("{\"file\": " + q(file) + ", \"kind\": " + q(bundle ? "root_bundle" : "cert")
                    + ", \"java\": " + body + "}");
        }
        java.io.PrintStream stdout = new java.io.PrintStream(
                new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        stdout.print("{\"java_version\": " + q(System.getProperty("java.version"))
                + ", \"files\": [\n" + String.join(",\n", out) + "\n]}\n");
    }
}
