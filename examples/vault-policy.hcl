# Least privilege for ofmkeys on Vault KV v2, mount "secret", no prefix.
# With --vault-prefix P, put P/ before "ofmkeys/" in every path.
# Every write ofmkeys makes carries check-and-set, so the mount may set
# cas_required=true.

# Documents: the keyset state, one path per key, pending CSR keys, lease, audit.
path "secret/data/ofmkeys/*" {
  capabilities = ["create", "read", "update"]
}

# Listing keysets and keys; deleting a pending key once its certificate is in.
path "secret/metadata/ofmkeys/*" {
  capabilities = ["list", "read", "delete"]
}
path "secret/metadata/ofmkeys" {
  capabilities = ["list"]
}

# Renewing its own token.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
