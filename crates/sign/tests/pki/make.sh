#!/usr/bin/env bash
# Regenerates the certificate fixtures of tests/chains.rs with the openssl command line.
# Valid for 100 years from the day they are made (2026-11-22 for the committed ones); the
# tests pick "now" explicitly.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem
days=36524
key() { openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$1.key.pem" 2>/dev/null; }
ext() { printf '%s\n' "$@" > ext.cnf; }
# cert NAME SUBJECT ISSUER_NAME (or self) EXTENSIONS...
cert() {
  local name=$1 subj=$2 issuer=$3; shift 3
  ext "$@"
  openssl req -new -key "$name.key.pem" -subj "/CN=$subj" -out "$name.csr" 2>/dev/null
  if [ "$issuer" = self ]; then
    openssl x509 -req -in "$name.csr" -signkey "$name.key.pem" -days $days -extfile ext.cnf -out "$name.pem" 2>/dev/null
  else
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key.pem" -CAcreateserial \
      -days $days -extfile ext.cnf -out "$name.pem" 2>/dev/null
  fi
  rm -f "$name.csr"
}
key root P-384;   cert root "Warden Test Root" self "basicConstraints=critical,CA:true" "keyUsage=critical,keyCertSign,cRLSign"
key other P-256;  cert other "Other Root" self "basicConstraints=critical,CA:true" "keyUsage=critical,keyCertSign"
key inter P-256;  cert inter "Warden Test Intermediate" root "basicConstraints=critical,CA:true,pathlen:0" "keyUsage=critical,keyCertSign"
key notca P-256;  cert notca "Not A CA" root "basicConstraints=critical,CA:false" "keyUsage=critical,digitalSignature"
key leaf P-256;   cert leaf "publisher@example.org" inter "basicConstraints=CA:false" "keyUsage=critical,digitalSignature"
key eku P-256;    cert eku "eku-only@example.org" inter "basicConstraints=CA:false" "extendedKeyUsage=codeSigning"
key nouse P-256;  cert nouse "no-signing@example.org" inter "basicConstraints=CA:false" "keyUsage=critical,keyEncipherment"
key under P-256;  cert under "under-not-ca@example.org" notca "keyUsage=critical,digitalSignature"
key crit P-256;   cert crit "critical-ext@example.org" inter "keyUsage=critical,digitalSignature" "1.2.3.4.5=critical,ASN1:NULL"
rm -f ext.cnf ./*.srl ./*.key.pem
