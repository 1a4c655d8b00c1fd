#!/bin/sh
# Creates the blob bucket and the product's own MinIO user (the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
# of deploy/.env), so workers never hold MinIO's root credentials. Safe to run on every start.
set -eu
until mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do echo 'waiting for MinIO...'; sleep 1; done
mc mb --ignore-existing "local/$BUCKET"
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin policy attach local readwrite --user "$AWS_ACCESS_KEY_ID" 2>/dev/null || true # already attached on a re-run
echo "bucket $BUCKET and user $AWS_ACCESS_KEY_ID are ready"
