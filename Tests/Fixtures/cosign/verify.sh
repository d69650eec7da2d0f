#!/bin/sh
# Re-verifies every vector in this directory with openssl. Run from this directory.
set -e
v() { printf '%-40s ' "$2"; openssl dgst -sha256 -verify "$1" -signature "$2/signature.der" "$2/payload.json"; }
for d in p256-cosign-ci-valid p256-cosign-ci-valid-2 p256-skopeo-ci-with-tag; do base64 -d "$d/signature.b64" > "$d/signature.der"; v ci-cosign.pub "$d"; done
d=p256-cosign-ci-key-rekor; base64 -d "$d/signature.b64" > "$d/signature.der"; v ci-cosign2.pub "$d"
for d in p256-sigstore-rs rsa2048-pkcs1v15-sigstore-rs-suse; do base64 -d "$d/signature.b64" > "$d/signature.der"; v "$d/key.pub" "$d"; done
d=SYNTHETIC-ed25519-openssl; printf '%-40s ' "$d"; openssl pkeyutl -verify -pubin -inkey "$d/key.pub" -rawin -in "$d/payload.json" -sigfile "$d/signature.der"
d=SYNTHETIC-p384-openssl; for h in sha384 sha256; do printf '%-40s ' "$d ($h)"; openssl dgst -$h -verify "$d/key.pub" -signature "$d/signature-$h.der" "$d/payload.json"; done
for d in p256-cosign-ci-valid p256-cosign-ci-valid-2 p256-cosign-ci-key-rekor p256-skopeo-ci-with-tag; do
  want=$(sed 's/.*"docker-manifest-digest":"sha256:\([0-9a-f]*\)".*/\1/' "$d/payload.json"); got=$(sha256sum < "$d/manifest.json" | cut -c1-64)
  [ "$want" = "$got" ] && echo "$d: manifest digest matches payload" || { echo "$d: DIGEST MISMATCH"; exit 1; }
done
