#!/usr/bin/env bash
# Vendor Swagger UI and ReDoc from the npm registry into service/static/docs/,
# so /docs and /redoc work on hosts with no internet access.
# Usage: bash docs/update-docs-ui.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
# Then run the browser test (tests/integration/test_docs_browser.py) and commit.
set -euo pipefail
SWAGGER_UI="${1:-5.35.0}"
REDOC="${2:-2.5.4}"
cd "$(dirname "$0")/.."
dest=service/static/docs
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC" >/dev/null)
tar -xzf "$work/swagger-ui-dist-$SWAGGER_UI.tgz" -C "$work" && mv "$work/package" "$work/swagger"
tar -xzf "$work/redoc-$REDOC.tgz" -C "$work" && mv "$work/package" "$work/redoc"

rm -rf "$dest" && mkdir -p "$dest"
cp "$work/swagger/swagger-ui-bundle.js" "$work/swagger/swagger-ui.css" "$dest/"
cp "$work/swagger/LICENSE" "$dest/LICENSE.swagger-ui"
[ -f "$work/swagger/NOTICE" ] && cp "$work/swagger/NOTICE" "$dest/NOTICE.swagger-ui"
cp "$work/redoc/bundles/redoc.standalone.js" "$dest/"
cp "$work/redoc/LICENSE" "$dest/LICENSE.redoc"
cat > "$dest/VERSIONS" <<TXT
swagger-ui-dist $SWAGGER_UI (Apache-2.0, npm registry)
redoc $REDOC (MIT, npm registry)
TXT
ls -la "$dest"
