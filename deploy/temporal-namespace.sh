#!/bin/sh
# Registers the namespace the product uses, once the server answers. Safe to run on every start.
set -eu
address=temporal:7233
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do echo 'waiting for Temporal...'; sleep 2; done
temporal operator namespace describe --address "$address" -n "$NAMESPACE" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$address" -n "$NAMESPACE" --retention "$RETENTION"
echo "namespace $NAMESPACE is ready"
