import { type KeyObject, X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { errors } from '@shoal/errors';
import forge from 'node-forge';

/*
 * Keys are ECDSA P-256, as in Docker Swarm's own PKI. node-forge can build certificates but can only
 * sign with RSA, and RSA-2048 key generation costs about 250 ms a key here against well under 1 ms for
 * P-256, which matters when many suites each make a PKI. So Node's crypto makes the keys and signs,
 * and forge's ASN.1 encoder lays out the certificate (RFC 5280) around the signature.
 */

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** Key usage bits, already laid out as DER BIT STRING contents (unused-bit count, then the bits). */
const KEY_USAGE = {
  /** digitalSignature (bit 0), keyCertSign (bit 5), cRLSign (bit 6). */
  authority: Buffer.from([0x01, 0x86]),
  /** digitalSignature only: ECDSA keys sign handshakes, they never encipher keys. */
  endEntity: Buffer.from([0x07, 0x80]),
};

/** The roles a node certificate's OU names (swarmkit's `ca.ManagerRole` and `ca.WorkerRole`). */
export const MANAGER_ROLE = 'swarm-manager';
export const WORKER_ROLE = 'swarm-worker';

/**
 * The DNS name every manager's certificate carries as a server: peers verify a manager by this name,
 * whatever address they dial it at (as swarmkit does).
 */
export const MANAGER_SERVER_NAME = MANAGER_ROLE;

const DAY_MS = 24 * 60 * 60 * 1000;
/** Swarm's defaults: a root CA lives 20 years, a node certificate 90 days (2160h). */
export const DEFAULT_CA_VALIDITY_MS = 20 * 365 * DAY_MS;
export const DEFAULT_CERTIFICATE_VALIDITY_MS = 90 * DAY_MS;
/** Certificates are valid from an hour ago, tolerating clock skew between hosts (swarmkit backdates 1h). */
const BACKDATE_MS = 60 * 60 * 1000;

/** Who a certificate is for. The short names are the X.509 attribute names. */
export interface CertificateSubject {
  /** Common name; Swarm puts the node id here. */
  cn: string;
  /** Organizational unit; Swarm puts the role here (`swarm-manager`, `swarm-worker`). */
  ou?: string;
  /** Organization; Swarm puts the cluster id here. */
  o?: string;
  /**
   * DNS names and IPv4 addresses the certificate is valid for as a server.
   * @default ["localhost", "127.0.0.1"]
   */
  serverNames?: string[];
}

/** A certificate with its key, in PEM, usable for both TLS servers and TLS clients. */
export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 private key. */
  keyPem: string;
  /** The issuing CA's certificate: what the other side must trust. */
  caCertPem: string;
}

/** A certificate authority: its own certificate and key, and a way to issue certificates. */
export interface CertificateAuthority {
  /** The self-signed CA certificate that peers trust. */
  readonly caCertPem: string;
  /** The CA's PKCS#8 private key. Whoever holds it can issue certificates: keep it out of logs and at mode 0600 on disk. */
  readonly caKeyPem: string;
  /** Issues a certificate for `subject`, signed by this CA, with a fresh key. */
  issue(subject: CertificateSubject, options?: { validityMs?: number }): IssuedCertificate;
  /**
   * Signs the key of a certificate signing request (after checking the request's own signature) as
   * `subject`, whatever subject the request asked for: the CA, not the requester, names the node.
   * Returns the certificate PEM.
   */
  signRequest(csrPem: string, subject: CertificateSubject, options?: { validityMs?: number }): string;
}

/** A new self-signed ECDSA P-256 CA named `commonName`, valid for `validityMs` (default 20 years, as Swarm's root CA). */
export function createCertificateAuthority(commonName: string, options: { validityMs?: number } = {}): CertificateAuthority {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = distinguishedName({ cn: commonName });
  const caCertPem = signCertificate({
    issuer: name,
    subject: name,
    subjectKey: keys.publicKey,
    signingKey: keys.privateKey,
    validityMs: options.validityMs ?? DEFAULT_CA_VALIDITY_MS,
    extensions: [
      extension(OID.basicConstraints, true, sequence([booleanTrue()])),
      extension(OID.keyUsage, true, bitString(KEY_USAGE.authority)),
      extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(keys.publicKey))),
    ],
  });
  return authority(caCertPem, keys.privateKey, name, keys.publicKey);
}

/** The CA stored as `caCertPem` and `caKeyPem` (as {@link createCertificateAuthority} made it), ready to issue again. */
export function loadCertificateAuthority(caCertPem: string, caKeyPem: string): CertificateAuthority {
  let certificate: X509Certificate;
  let privateKey: KeyObject;
  try {
    certificate = new X509Certificate(caCertPem);
    privateKey = createPrivateKey(caKeyPem);
  } catch (err) {
    throw errors.invalidArgument(`not a PEM certificate and private key: ${(err as Error).message}`);
  }
  if (!certificate.ca) throw errors.invalidArgument('the certificate is not a CA certificate');
  if (!certificate.checkPrivateKey(privateKey)) throw errors.invalidArgument("the private key does not belong to the CA certificate");
  const subject = fromDer(certificate.raw).value as Asn1[];
  const tbs = (subject[0]?.value ?? []) as Asn1[];
  // tbsCertificate: [0] version, serial, signature algorithm, issuer, validity, subject, ...
  const name = tbs[5];
  if (name === undefined) throw errors.invalidArgument('the CA certificate has no subject');
  return authority(caCertPem, privateKey, name, certificate.publicKey);
}

function authority(caCertPem: string, caKey: KeyObject, name: Asn1, caPublicKey: KeyObject): CertificateAuthority {
  const keyId = keyIdentifier(caPublicKey);
  return {
    caCertPem,
    caKeyPem: caKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    issue(subject, options = {}) {
      const leafKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const certPem = signLeaf(subject, leafKeys.publicKey, options.validityMs);
      return { certPem, keyPem: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), caCertPem };
    },
    signRequest(csrPem, subject, options = {}) {
      return signLeaf(subject, parseCertificateRequest(csrPem).publicKey, options.validityMs);
    },
  };

  function signLeaf(subject: CertificateSubject, subjectKey: KeyObject, validityMs = DEFAULT_CERTIFICATE_VALIDITY_MS): string {
    const serverNames = subject.serverNames ?? ['localhost', '127.0.0.1'];
    return signCertificate({
      issuer: name,
      subject: distinguishedName(subject),
      subjectKey,
      signingKey: caKey,
      validityMs,
      extensions: [
        extension(OID.basicConstraints, true, sequence([])),
        extension(OID.keyUsage, true, bitString(KEY_USAGE.endEntity)),
        extension(OID.extKeyUsage, false, sequence([oid(OID.serverAuth), oid(OID.clientAuth)])),
        ...(serverNames.length === 0 ? [] : [extension(OID.subjectAltName, false, sequence(serverNames.map(generalName)))]),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(subjectKey))),
        extension(OID.authorityKeyIdentifier, false, sequence([contextTag(0, false, binary(keyId))])),
      ],
    });
  }
}

/**
 * The subject Swarm gives a node's certificate: CN = node ID, OU = role, O = cluster ID, valid as a
 * server under its role and its node ID (managers are dialled as `swarm-manager`).
 */
export function nodeCertificateSubject(nodeId: string, role: typeof MANAGER_ROLE | typeof WORKER_ROLE, clusterId: string): CertificateSubject {
  return { cn: nodeId, ou: role, o: clusterId, serverNames: [role, nodeId] };
}

/** A fresh P-256 key and a PKCS#10 request signed by it, naming `cn` when given (a renewal names its node; a join names none). */
export function createCertificateRequest(options: { cn?: string } = {}): { csrPem: string; keyPem: string } {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signatureAlgorithm = sequence([oid(OID.ecdsaWithSha256)]);
  const requestInfo = sequence([
    integer(Buffer.from([0])),
    options.cn === undefined ? sequence([]) : distinguishedName({ cn: options.cn }),
    fromDer(keys.publicKey.export({ type: 'spki', format: 'der' })),
    contextTag(0, true, []),
  ]);
  const signature = sign('sha256', toDer(requestInfo), keys.privateKey);
  const der = toDer(sequence([requestInfo, signatureAlgorithm, bitString(Buffer.concat([Buffer.from([0]), signature]))]));
  return { csrPem: pem('CERTIFICATE REQUEST', der), keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** What a certificate signing request asks for, once its signature is checked: the common name it names, if any. */
export function readCertificateRequest(csrPem: string): { cn: string | undefined } {
  return { cn: parseCertificateRequest(csrPem).cn };
}

const CSR_PATTERN = /-----BEGIN CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE REQUEST-----/;

function parseCertificateRequest(csrPem: string): { publicKey: KeyObject; cn: string | undefined } {
  const invalid = (reason: string) => errors.invalidArgument(`invalid certificate signing request: ${reason}`);
  const body = CSR_PATTERN.exec(csrPem)?.[1];
  if (body === undefined) throw invalid('not a PEM "CERTIFICATE REQUEST"');
  let request: Asn1[];
  try {
    request = fromDerKeepingBitStrings(Buffer.from(body.replace(/\s+/g, ''), 'base64')).value as Asn1[];
  } catch {
    throw invalid('not DER');
  }
  const [info, , signatureBits] = request;
  const infoFields = info?.value;
  if (!Array.isArray(infoFields) || infoFields.length < 3 || typeof signatureBits?.value !== 'string') throw invalid('not a PKCS#10 request');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: toDer(infoFields[2] as Asn1), format: 'der', type: 'spki' });
  } catch {
    throw invalid('its public key cannot be read');
  }
  if (publicKey.asymmetricKeyType !== 'ec') throw invalid('Shoal signs ECDSA keys only');
  // A BIT STRING's first byte counts unused bits; the ECDSA signature follows it.
  const signature = Buffer.from(signatureBits.value, 'binary').subarray(1);
  if (!verify('sha256', toDer(info as Asn1), publicKey, signature)) throw invalid('its signature does not match its key');
  return { publicKey, cn: commonNameOf(infoFields[1] as Asn1) };
}

/** The CN attribute of an X.501 Name, if it has one. */
function commonNameOf(name: Asn1): string | undefined {
  for (const relativeName of (name.value ?? []) as Asn1[]) {
    for (const attribute of (relativeName.value ?? []) as Asn1[]) {
      const [type, value] = attribute.value as Asn1[];
      if (type !== undefined && value !== undefined && asn1.derToOid(type.value as string) === OID.commonName) {
        return forge.util.decodeUtf8(value.value as string);
      }
    }
  }
  return undefined;
}

/** Who a certificate names and when it is valid. */
export interface CertificateFacts {
  cn: string;
  ou: string;
  o: string;
  notBefore: Date;
  notAfter: Date;
}

/** The subject and validity of a PEM certificate; INVALID_ARGUMENT when it is not one. */
export function readCertificate(certPem: string): CertificateFacts {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (err) {
    throw errors.invalidArgument(`not a PEM certificate: ${(err as Error).message}`);
  }
  const attribute = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(certificate.subject)?.[1] ?? '';
  return { cn: attribute('CN'), ou: attribute('OU'), o: attribute('O'), notBefore: new Date(certificate.validFrom), notAfter: new Date(certificate.validTo) };
}

/** Whether `certPem` was signed by the CA `caCertPem` and is valid now. */
export function certificateChainsTo(certPem: string, caCertPem: string): boolean {
  try {
    const certificate = new X509Certificate(certPem);
    const ca = new X509Certificate(caCertPem);
    const now = Date.now();
    return certificate.checkIssued(ca) && certificate.verify(ca.publicKey) && Date.parse(certificate.validFrom) <= now && now <= Date.parse(certificate.validTo);
  } catch {
    return false;
  }
}

interface CertificateFields {
  validityMs: number;
  issuer: Asn1;
  subject: Asn1;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  extensions: Asn1[];
}

function signCertificate(fields: CertificateFields): string {
  const now = Date.now();
  const signatureAlgorithm = sequence([oid(OID.ecdsaWithSha256)]);
  const tbsCertificate = sequence([
    contextTag(0, true, [integer(Buffer.from([2]))]), // version 3, encoded as 2
    integer(serialNumber()),
    signatureAlgorithm,
    fields.issuer,
    sequence([time(new Date(now - BACKDATE_MS)), time(new Date(now + fields.validityMs))]),
    fields.subject,
    fromDer(fields.subjectKey.export({ type: 'spki', format: 'der' })),
    contextTag(3, true, [sequence(fields.extensions)]),
  ]);
  const signature = sign('sha256', toDer(tbsCertificate), fields.signingKey);
  return pem('CERTIFICATE', toDer(sequence([tbsCertificate, signatureAlgorithm, bitString(Buffer.concat([Buffer.from([0]), signature]))])));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function distinguishedName(subject: Pick<CertificateSubject, 'cn' | 'ou' | 'o'>): Asn1 {
  if (subject.cn === '') throw errors.invalidArgument('a certificate needs a common name');
  const attributes: [string, string | undefined][] = [
    [OID.organization, subject.o],
    [OID.organizationalUnit, subject.ou],
    [OID.commonName, subject.cn],
  ];
  return sequence(
    attributes
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([type, value]) => set([sequence([oid(type), utf8String(value)])])),
  );
}

function generalName(serverName: string): Asn1 {
  if (isIPv4(serverName)) return contextTag(7, false, binary(Buffer.from(serverName.split('.').map(Number))));
  if (isIPv6(serverName)) throw errors.invalidArgument('certificates support IPv4 addresses only', { serverName });
  return contextTag(2, false, serverName);
}

/** Positive and without a leading zero byte, so the DER INTEGER needs no padding. */
function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  return serial;
}

/** SHA-1 of the encoded public key: any stable identifier will do (RFC 7093). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

function extension(type: string, critical: boolean, value: Asn1): Asn1 {
  return sequence([oid(type), ...(critical ? [booleanTrue()] : []), octetString(toDer(value))]);
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050. */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function sequence(items: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}

function set(items: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
}

function oid(dotted: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
}

function integer(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, binary(bytes));
}

function booleanTrue(): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff');
}

function octetString(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary(bytes));
}

/** `contents` starts with the count of unused bits in the last byte. */
function bitString(contents: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, binary(contents));
}

function utf8String(text: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(text));
}

/** A context-specific tag ([n]): explicit wrappers are constructed, implicit primitives carry bytes. */
function contextTag(tag: number, constructed: boolean, value: Asn1[] | string): Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag as forge.asn1.Type, constructed, value);
}

/** forge represents bytes as "binary" strings, one char per byte. */
function binary(bytes: Buffer): string {
  return bytes.toString('binary');
}

function toDer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

function fromDer(der: Buffer): Asn1 {
  return asn1.fromDer(binary(der));
}

/**
 * Like {@link fromDer}, but BIT STRINGs keep their bytes: by default forge decodes a BIT STRING that
 * happens to hold DER (an ECDSA signature does) and re-encodes it differently. forge accepts this
 * option; its typings only know the older boolean `strict` argument.
 */
function fromDerKeepingBitStrings(der: Buffer): Asn1 {
  const parse = asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => Asn1;
  return parse(binary(der), { decodeBitStrings: false });
}
