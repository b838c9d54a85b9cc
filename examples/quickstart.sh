#!/usr/bin/env bash
# Run with: KEY=<tenant ADMIN or INTEGRATION key> bash examples/quickstart.sh [http://127.0.0.1:8080]
#
# Enrols a member (idempotently: run it twice, get the same member), reads it back by the
# brand's own id, and lists members with a tag. `cargo run -- serve --demo` prints a KEY.
set -euo pipefail
URL="${1:-http://127.0.0.1:8080}/graphql"
: "${KEY:?set KEY to a tenant API key}"

gql() {
  curl -sS "$URL" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$1"
  echo
}

gql '{"query":"mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { member { id externalId email tags } } }",
      "variables":{"i":{"externalId":"pos-1001","email":"bo@example.com","phone":"+31612345678",
      "firstName":"Bo","birthday":"1992-03-14","tags":["store-42"],"consents":{"email":true,"sms":false},
      "attributes":{"favouriteDrink":"oat latte"},"idempotencyKey":"quickstart-pos-1001"}}}'
gql '{"query":"{ memberByExternalId(externalId: \"pos-1001\") { id firstName attributes status } }"}'
gql '{"query":"{ members(first: 10, filter: {tag: \"store-42\"}) { edges { node { externalId } } pageInfo { hasNextPage endCursor } } }"}'
