#!/usr/bin/env bash
# Refresh the vendored Swagger UI that /docs serves (web/api_docs.py): the two files the page
# loads, with their licence, from the npm package at the pinned version. The CSP refuses CDNs,
# so the app serves these itself.
# Usage: scripts/vendor-swagger-ui.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-5.35.0}"
dest=src/casescope/web/static/vendor/swagger-ui
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf ./*.tgz)
rm -rf "$dest" && mkdir -p "$dest"
for name in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
  cp "$work/package/$name" "$dest/"
done
# The bundle names a source map that is not vendored: drop the line so browsers do not ask.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's|/\*# sourceMappingURL=[^*]*\*/||' "$dest/swagger-ui-bundle.js" "$dest/swagger-ui.css"
echo "$version" > "$dest/VERSION"
echo "vendored swagger-ui-dist $version into $dest"
