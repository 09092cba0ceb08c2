// Verifies a compact JWS (file argv[3]) against a JWKS (argv[2]: a file, or
// an http(s) URL that panva/jose fetches itself, as a peer does) with
// panva/jose, PS256 only, and prints the payload. With argv[4], the JWS is
// detached and argv[4] is the payload file. Exit 1 when it does not verify.
import { readFileSync } from 'node:fs';
import { compactVerify, flattenedVerify, createLocalJWKSet, createRemoteJWKSet } from 'jose';

const [, , jwksSource, jwsFile, payloadFile] = process.argv;
const jwks = /^https?:/.test(jwksSource)
  ? createRemoteJWKSet(new URL(jwksSource))
  : createLocalJWKSet(JSON.parse(readFileSync(jwksSource, 'utf8')));
const jws = readFileSync(jwsFile, 'utf8').trim();
const options = { algorithms: ['PS256'] };
try {
  let result;
  if (payloadFile) {
    const [protectedHeader, , signature] = jws.split('.');
    result = await flattenedVerify({ protected: protectedHeader, payload: readFileSync(payloadFile).toString('base64url'), signature }, jwks, options);
  } else {
    result = await compactVerify(jws, jwks, options);
  }
  process.stdout.write(`kid=${result.protectedHeader.kid} alg=${result.protectedHeader.alg}\n`);
  process.stdout.write(new TextDecoder().decode(result.payload));
} catch (e) {
  process.stderr.write(`jose: ${e.code || ''} ${e.message}\n`);
  process.exit(1);
}
