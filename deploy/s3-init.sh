#!/bin/sh
# Creates the product's own S3 user (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of deploy/.env) and
# the blob bucket, owned by that user, so workers never hold the S3 server's root credentials
# (ROOT_ACCESS_KEY / ROOT_SECRET_KEY of deploy/infra.env). Safe to run on every start.
# Run by compose's s3-init job and by deploy/native/cluster.sh (S3_ENDPOINT).
set -eu
export ADMIN_ENDPOINT_URL="${S3_ENDPOINT:-http://s3:7070}"
admin() { versitygw admin "$@"; } # as root: ROOT_ACCESS_KEY / ROOT_SECRET_KEY from the environment
listed() { admin "$1" | awk 'NR > 2 { print $1 }' | grep -qxF "$2"; }

until admin list-users >/dev/null 2>&1; do echo 'waiting for the S3 server...'; sleep 1; done
if listed list-users "$AWS_ACCESS_KEY_ID"; then
  admin update-user --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --role user
else
  admin create-user --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --role user
fi
listed list-buckets "$BUCKET" || admin create-bucket --owner "$AWS_ACCESS_KEY_ID" --bucket "$BUCKET"
echo "bucket $BUCKET and user $AWS_ACCESS_KEY_ID are ready"
