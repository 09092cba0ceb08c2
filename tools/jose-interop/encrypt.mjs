// Encrypts argv[3] to the first use=enc key of the JWKS file argv[2] with
// panva/jose: RSA-OAEP-256 / A256GCM, no kid in the header (as OFM's data
// providers send it). Prints the compact JWE.
import { readFileSync } from 'node:fs';
import { CompactEncrypt, importJWK } from 'jose';

const [, , jwksFile, plaintext] = process.argv;
const { keys } = JSON.parse(readFileSync(jwksFile, 'utf8'));
const jwk = keys.find((k) => k.use === 'enc');
if (!jwk) {
  process.stderr.write('jose: no use=enc key in the JWKS\n');
  process.exit(1);
}
const key = await importJWK(jwk, 'RSA-OAEP-256');
const jwe = await new CompactEncrypt(new TextEncoder().encode(plaintext))
  .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
  .encrypt(key);
process.stdout.write(jwe + '\n');
